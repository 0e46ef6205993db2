// HTTP requests to the Hub. Redirects are followed by hand, so the token never leaves the Hub's
// origin and every hop goes through the caller's `fetch`. Hub status codes become errors that
// state the fix.

import { NessoError, type NessoErrorCode } from "../errors.js";
import type { HubToken } from "./token.js";

/** The Hub follows a renamed repo with one redirect and a file with one more to its CDN; 10 is ample. */
const maxRedirects = 10;

/** A Hub request failed; `retryable` is true for failures that a second attempt may not repeat. */
export class HubRequestError extends NessoError {
  readonly status: number | undefined;
  readonly retryable: boolean;

  constructor(code: NessoErrorCode, message: string, options: { status?: number; retryable: boolean; cause?: unknown }) {
    super(code, message, { cause: options.cause });
    this.name = "HubRequestError";
    this.status = options.status;
    this.retryable = options.retryable;
  }
}

/** The purpose of a request, so that its errors can name the repo, revision and file. */
export interface RequestContext {
  /** E.g. "listing the files of org/name at main". */
  operation: string;
  endpoint: string;
  repo: string;
  revision: string;
  file?: string;
  token?: HubToken;
}

export interface HubRequest {
  url: string;
  method: "GET" | "HEAD";
  headers?: Record<string, string>;
  token?: HubToken;
  fetch: typeof fetch;
  signal?: AbortSignal;
  /** Time limit in ms for each hop, response body included (default: none). */
  timeoutMs?: number;
  /**
   * True to follow redirects to other origins (the body of a file lives on a CDN). False to return
   * the first cross-origin redirect itself, whose headers carry the file's metadata.
   */
  followCrossOrigin: boolean;
  context: RequestContext;
}

/** Returns the URL without its query string, which on a CDN redirect contains a signature. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

/**
 * Sends a request and follows redirects, returning the final response and its URL. Authorization
 * is sent only to the origin of the first URL. Rejects with a HubRequestError for network
 * failures and with the signal's reason when aborted.
 */
export async function requestHub(request: HubRequest): Promise<{ response: Response; url: string }> {
  const origin = new URL(request.url).origin;
  let url = request.url;

  for (let hop = 0; hop <= maxRedirects; hop++) {
    const headers: Record<string, string> = { "User-Agent": "nesso-mcp", ...request.headers };
    if (request.token && new URL(url).origin === origin) headers.Authorization = `Bearer ${request.token.value}`;

    const timeout = request.timeoutMs === undefined ? undefined : AbortSignal.timeout(request.timeoutMs);
    const signals = [request.signal, timeout].filter((signal): signal is AbortSignal => signal !== undefined);
    let response: Response;
    try {
      response = await request.fetch(url, { method: request.method, headers, redirect: "manual", signal: signals.length > 0 ? AbortSignal.any(signals) : undefined });
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason;
      if (timeout?.aborted) {
        throw new HubRequestError("DOWNLOAD", `${request.context.operation}: ${request.method} ${redactUrl(url)} timed out after ${request.timeoutMs} ms; check the network and HF_ENDPOINT`, {
          retryable: true,
          cause: error,
        });
      }
      throw networkError(request, url, error);
    }

    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || location === null) return { response, url };

    const next = new URL(location, url).toString();
    if (!request.followCrossOrigin && new URL(next).origin !== new URL(url).origin) return { response, url };
    await response.body?.cancel();
    url = next;
  }

  throw new HubRequestError("DOWNLOAD", `${request.context.operation}: more than ${maxRedirects} redirects starting at ${redactUrl(request.url)}; check HF_ENDPOINT`, {
    retryable: false,
  });
}

function networkError(request: HubRequest, url: string, error: unknown): HubRequestError {
  const cause = (error as { cause?: { message?: string; code?: string } }).cause;
  const reason = cause?.message ?? (error as Error).message;
  return new HubRequestError(
    "DOWNLOAD",
    `${request.context.operation}: ${request.method} ${redactUrl(url)} failed: ${reason}; check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache`,
    { retryable: true, cause: error },
  );
}

/**
 * Turns a failed Hub response into an error that names the repo, the status and the fix. 401 and
 * 403 explain HF_TOKEN; 404 distinguishes the repo, the revision and the file by the Hub's
 * `X-Error-Code` header; 429 and 5xx are retryable.
 */
export function responseError(response: Response, url: string, context: RequestContext): HubRequestError {
  const status = response.status;
  const serverMessage = response.headers.get("x-error-message");
  const detail = serverMessage ? ` (the Hub says: ${serverMessage.slice(0, 300)})` : "";
  const prefix = `${context.operation}: ${redactUrl(url)} returned HTTP ${status}${detail}`;
  const repoPage = `${context.endpoint}/${context.repo}`;

  if (status === 401 && context.token === undefined) {
    return new HubRequestError(
      "DOWNLOAD",
      `${prefix}. The repo ${context.repo} is gated or private (or does not exist), so it needs a Hugging Face access token: ` +
        `create one at ${context.endpoint}/settings/tokens, accept the model's terms on ${repoPage}, then set HF_TOKEN=<token> or run \`huggingface-cli login\``,
      { status, retryable: false },
    );
  }
  if (status === 401) {
    return new HubRequestError(
      "DOWNLOAD",
      `${prefix}. The Hub rejected the token from ${context.token?.source}: check that HF_TOKEN holds a valid, unexpired token from ${context.endpoint}/settings/tokens`,
      { status, retryable: false },
    );
  }
  if (status === 403) {
    const source = context.token ? `the token from ${context.token.source}` : "an anonymous request";
    return new HubRequestError(
      "DOWNLOAD",
      `${prefix}. Access to ${context.repo} was denied to ${source}: request access and accept the terms on ${repoPage}, then set HF_TOKEN to a token of that account`,
      { status, retryable: false },
    );
  }
  if (status === 404) {
    const errorCode = response.headers.get("x-error-code");
    let description = `the repo ${context.repo} was not found; check the repo id`;
    if (errorCode === "RevisionNotFound") description = `revision "${context.revision}" of ${context.repo} was not found; check the branch, tag or commit`;
    if (errorCode === "EntryNotFound" && context.file) description = `file ${context.file} was not found in ${context.repo} at ${context.revision}`;
    return new HubRequestError("MODEL_NOT_FOUND", `${prefix}: ${description}`, { status, retryable: false });
  }
  if (status === 429 || status >= 500) {
    return new HubRequestError("DOWNLOAD", `${prefix}; the Hub is busy or failing, try again later`, { status, retryable: true });
  }
  return new HubRequestError("DOWNLOAD", prefix, { status, retryable: false });
}
