// JSON text as the `tojson` filter of Hugging Face chat templates writes it: separators ", " and
// ": ", key order kept, non-ASCII characters left as they are.

export function formatJinjaJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((item) => formatJinjaJson(item)).join(", ")}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}: ${formatJinjaJson(item)}`).join(", ")}}`;
}
