// The `includeTools` / `excludeTools` filters of a server entry. Patterns match a tool's name on its
// server; `*` matches any run of characters and everything else matches itself.

/** Keeps the items whose name matches `include` (all when absent) and none of `exclude`. */
export function filterTools<T extends { name: string }>(tools: readonly T[], include?: readonly string[], exclude?: readonly string[]): T[] {
  const included = include === undefined ? undefined : include.map(patternToRegExp);
  const excluded = (exclude ?? []).map(patternToRegExp);
  return tools.filter((tool) => {
    if (included !== undefined && !included.some((pattern) => pattern.test(tool.name))) return false;
    return !excluded.some((pattern) => pattern.test(tool.name));
  });
}

function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`, "s");
}
