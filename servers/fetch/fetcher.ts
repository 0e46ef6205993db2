// Downloading one URL as text, within a size and a time limit. Binary content, HTTP errors and
// URLs that are not http(s) are rejected with a FetchError whose message the model can read.

export interface FetchLimits {
  /** Bytes of body read at most; a longer body is cut there and marked truncated. */
  maxBytes: number;
  /** Time for the whole request, headers and body, in milliseconds. */
  timeoutMs: number;
  userAgent: string;
}

export interface FetchedDocument {
  /** URL after redirects. */
  url: string;
  /** Media type without parameters, or "" when the server sent none. */
  mediaType: string;
  kind: "html" | "text";
  text: string;
  /** Bytes read from the body. */
  bytes: number;
  /** True when the body was longer than `maxBytes` and was cut. */
  truncated: boolean;
}

/** A failure to report to the model as the tool's result. */
export class FetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FetchError";
  }
}

const textMediaTypes = new Set([
  "application/json", "application/xml", "application/javascript", "application/ecmascript", "application/x-javascript",
  "application/yaml", "application/x-yaml", "application/toml", "application/x-ndjson", "application/sql",
  "application/graphql", "application/x-sh", "application/x-httpd-php", "image/svg+xml",
]);

/** Fetches `rawUrl` and decodes its body as text. `signal` cancels the request. */
export async function fetchDocument(rawUrl: string, limits: FetchLimits, signal?: AbortSignal): Promise<FetchedDocument> {
  const url = parseHttpUrl(rawUrl);
  const deadline = AbortSignal.timeout(limits.timeoutMs);
  const combined = signal === undefined ? deadline : AbortSignal.any([signal, deadline]);

  let response: Response;
  try {
    response = await fetch(url, {
      redirect: "follow",
      signal: combined,
      headers: {
        "user-agent": limits.userAgent,
        accept: "text/html,application/xhtml+xml,text/markdown,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5",
      },
    });
  } catch (error) {
    throw describeRequestError(error, url, limits, signal, deadline);
  }

  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const statusText = response.statusText === "" ? "" : ` ${response.statusText}`;
    throw new FetchError(`fetching ${url.href} failed: the server responded with HTTP ${response.status}${statusText}`);
  }

  const contentType = response.headers.get("content-type") ?? "";
  const mediaType = contentType.split(";")[0].trim().toLowerCase();
  let kind = classifyMediaType(mediaType);
  if (kind === "binary") {
    await response.body?.cancel().catch(() => {});
    const length = response.headers.get("content-length");
    throw new FetchError(
      `${url.href} returned binary content (${mediaType}${length === null ? "" : `, ${length} bytes`}), which cannot be shown as text; ` +
        "the fetch tool reads HTML and text pages only",
    );
  }

  let body: { data: Uint8Array; truncated: boolean };
  try {
    body = await readBody(response, limits.maxBytes);
  } catch (error) {
    throw describeRequestError(error, url, limits, signal, deadline);
  }

  if (kind === "unknown") {
    kind = sniffKind(body.data);
    if (kind === "binary") {
      throw new FetchError(`${url.href} returned binary content (no Content-Type, ${body.data.length} bytes read), which cannot be shown as text`);
    }
  }

  const charset = charsetOf(contentType) ?? (kind === "html" ? sniffHtmlCharset(body.data) : undefined) ?? "utf-8";
  let text = decodeText(body.data, charset);
  if (body.truncated) text = text.replace(/\uFFFD$/, ""); // a character cut at the byte limit

  return {
    url: response.url === "" ? url.href : response.url,
    mediaType,
    kind: kind === "html" ? "html" : "text",
    text,
    bytes: body.data.length,
    truncated: body.truncated,
  };
}

/** Parses a URL and accepts only http and https. */
export function parseHttpUrl(rawUrl: string): URL {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new FetchError(`"${rawUrl}" is not a valid URL (expected e.g. https://example.com/page)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FetchError(`the fetch tool only reads http and https URLs; "${url.protocol}" in ${rawUrl} is not allowed`);
  }
  return url;
}

function classifyMediaType(mediaType: string): "html" | "text" | "binary" | "unknown" {
  if (mediaType === "") return "unknown";
  if (mediaType === "text/html" || mediaType === "application/xhtml+xml") return "html";
  if (mediaType.startsWith("text/") || textMediaTypes.has(mediaType)) return "text";
  if (mediaType.endsWith("+json") || mediaType.endsWith("+xml")) return "text";
  return "binary";
}

/** Guesses the kind of a body sent without Content-Type: NUL bytes mean binary. */
function sniffKind(data: Uint8Array): "html" | "text" | "binary" {
  const head = data.subarray(0, 1024);
  if (head.includes(0)) return "binary";
  const start = new TextDecoder("latin1").decode(head).trimStart().slice(0, 15).toLowerCase();
  return start.startsWith("<!doctype html") || start.startsWith("<html") ? "html" : "text";
}

function charsetOf(contentType: string): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
}

/** Finds `<meta charset=…>` or the http-equiv form in the first 2 KiB of an HTML body. */
function sniffHtmlCharset(data: Uint8Array): string | undefined {
  const head = new TextDecoder("latin1").decode(data.subarray(0, 2048));
  return /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(head)?.[1];
}

function decodeText(data: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset).decode(data);
  } catch {
    return new TextDecoder("utf-8").decode(data); // an unknown charset label
  }
}

/** Reads the body up to `maxBytes`; the rest is not downloaded. */
async function readBody(response: Response, maxBytes: number): Promise<{ data: Uint8Array; truncated: boolean }> {
  if (response.body === null) return { data: new Uint8Array(0), truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.length > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - total));
      total = maxBytes;
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    total += value.length;
  }
  const data = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return { data, truncated };
}

function describeRequestError(error: unknown, url: URL, limits: FetchLimits, signal: AbortSignal | undefined, deadline: AbortSignal): Error {
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new FetchError(`fetching ${url.href} was cancelled`);
  if (deadline.aborted) return new FetchError(`fetching ${url.href} timed out after ${limits.timeoutMs} ms`);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (error as Error).message;
  return new FetchError(`fetching ${url.href} failed: ${reason}`, { cause: error });
}
