// Hub metadata of a repo revision (its commit and file names) and of one file (ETag, size), read
// as huggingface_hub reads them: the model API for the list, a HEAD request on the file's resolve
// URL for the rest.

import { normalizeEtag } from "./cache.js";
import { HubRequestError, requestHub, responseError, type RequestContext } from "./http.js";
import { isCommitHash } from "./repo-id.js";
import type { HubToken } from "./token.js";

export interface HubClient {
  endpoint: string;
  token?: HubToken;
  fetch: typeof fetch;
  signal?: AbortSignal;
  /** Time limit in ms for each metadata request, response body included (default: none). */
  timeoutMs?: number;
}

export interface RepoRevision {
  /** The 40-hex commit the revision points to now. */
  commit: string;
  /** Every file path in the repo at that commit (the API's `siblings[].rfilename`). */
  files: string[];
}

/** Encodes each segment of a repo file path for a URL, keeping the slashes. */
function encodeFilePath(file: string): string {
  return file.split("/").map(encodeURIComponent).join("/");
}

/** Returns the URL from which a file of a repo at a commit, branch or tag is downloaded. */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodeFilePath(file)}`;
}

/** Fetches the commit a revision points to and the repo's file list from `/api/models/{repo}/revision/{rev}`. */
export async function fetchRepoRevision(client: HubClient, repo: string, revision: string): Promise<RepoRevision> {
  const context: RequestContext = { operation: `listing the files of ${repo} at ${revision}`, endpoint: client.endpoint, repo, revision, token: client.token };
  const url = `${client.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const { response, url: finalUrl } = await requestHub({ url, method: "GET", followCrossOrigin: true, context, ...client });
  if (!response.ok) {
    await response.body?.cancel();
    throw responseError(response, finalUrl, context);
  }

  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    if (client.signal?.aborted) throw client.signal.reason;
    const reason = (error as Error).message;
    throw new HubRequestError("DOWNLOAD", `${context.operation}: reading the response of ${url} as JSON failed (${reason}); check that HF_ENDPOINT points to a Hub`, {
      retryable: error instanceof Error && error.name !== "SyntaxError",
      cause: error,
    });
  }

  const info = body as { sha?: unknown; siblings?: unknown };
  if (typeof info.sha !== "string" || !isCommitHash(info.sha)) {
    throw new HubRequestError("DOWNLOAD", `${context.operation}: the response of ${url} has sha ${JSON.stringify(info.sha)}, expected a 40-hex commit`, {
      retryable: false,
    });
  }
  if (!Array.isArray(info.siblings) || !info.siblings.every((sibling) => typeof sibling?.rfilename === "string")) {
    throw new HubRequestError("DOWNLOAD", `${context.operation}: the response of ${url} has no siblings list of {rfilename} objects`, {
      retryable: false,
    });
  }
  return { commit: info.sha, files: info.siblings.map((sibling: { rfilename: string }) => sibling.rfilename) };
}

export interface FileMetadata {
  /** The normalized ETag: the LFS sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  /** True when the file is stored with LFS (the Hub sent `X-Linked-Etag`). */
  lfs: boolean;
  size: number;
  /** The commit the Hub served the file from (`X-Repo-Commit`), when the response had that header. */
  commit: string | undefined;
}

/**
 * Reads a file's ETag and size with a HEAD request on its resolve URL. For an LFS file the Hub
 * responds with a redirect to its CDN whose `X-Linked-Etag` and `X-Linked-Size` describe the
 * file, so cross-origin redirects are not followed here.
 */
export async function fetchFileMetadata(client: HubClient, repo: string, commit: string, file: string): Promise<FileMetadata> {
  const context: RequestContext = { operation: `reading the metadata of ${file} in ${repo}`, endpoint: client.endpoint, repo, revision: commit, file, token: client.token };
  const url = resolveUrl(client.endpoint, repo, commit, file);
  // Without identity encoding a server may compress, and Content-Length would not be the file size.
  const headers = { "Accept-Encoding": "identity" };
  const { response, url: finalUrl } = await requestHub({ url, method: "HEAD", headers, followCrossOrigin: false, context, ...client });
  await response.body?.cancel();
  if (response.status >= 400) throw responseError(response, finalUrl, context);

  const linkedEtag = response.headers.get("x-linked-etag");
  const etag = linkedEtag ?? response.headers.get("etag");
  const sizeText = response.headers.get("x-linked-size") ?? response.headers.get("content-length");
  const size = sizeText === null ? Number.NaN : Number(sizeText);
  if (etag === null || normalizeEtag(etag) === "") {
    throw new HubRequestError("DOWNLOAD", `${context.operation}: ${url} sent no ETag, so the file cannot be named in the cache; check that HF_ENDPOINT points to a Hub`, {
      retryable: false,
    });
  }
  // The ETag becomes a file name under blobs/, so anything that could leave that folder is rejected.
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/.test(normalizeEtag(etag))) {
    throw new HubRequestError("DOWNLOAD", `${context.operation}: ${url} sent ETag ${JSON.stringify(etag.slice(0, 140))}, which is not a safe blob name (letters, digits, "_", "-", ".")`, {
      retryable: false,
    });
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new HubRequestError("DOWNLOAD", `${context.operation}: ${url} sent size "${sizeText}", expected a byte count in X-Linked-Size or Content-Length`, {
      retryable: false,
    });
  }
  return { etag: normalizeEtag(etag), lfs: linkedEtag !== null, size, commit: response.headers.get("x-repo-commit") ?? undefined };
}
