// A Hugging Face Hub stand-in on 127.0.0.1 for the pull tests. It serves fixture repos in the Hub's
// URL layout:
//   GET  /api/models/{org}/{name}/revision/{rev}      {id, sha, siblings:[{rfilename}]}
//   HEAD/GET /{org}/{name}/resolve/{rev}/{file}       git files: 200 with ETag = git blob sha1;
//                                                     LFS files: 302 to the CDN origin with X-Linked-Etag/Size
//   GET  {cdn}/lfs/{sha256}                           the LFS bytes, with Range support
// The CDN is a second server on another port, so it is another origin, as on the real Hub.
// Both count the body bytes they send per file and can cut or corrupt a transfer on request.
//
// Importing this module installs the loopback guard: from then on the global fetch of the test
// file rejects every host except 127.0.0.1, localhost and ::1.

import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { installLoopbackGuard } from "./loopback-guard.js";

installLoopbackGuard();

export interface FixtureFile {
  name: string;
  content: Buffer;
  /** Served through the CDN redirect with X-Linked-Etag, like a file stored with git LFS. */
  lfs: boolean;
}

export interface FixtureRepo {
  id: string;
  commit: string;
  files: FixtureFile[];
  /** When set, resolve requests need `Authorization: Bearer <requiredToken>`. */
  requiredToken?: string;
  /** Other branch or tag names that point to `commit`. */
  branches?: string[];
}

export interface RecordedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

/** Faults applied to the next transfers of a file; each one is used up when it fires. */
export interface Faults {
  /** Close the connection after this many body bytes of the file. */
  cut?: { file: string; afterBytes: number; times: number };
  /** Stop sending, with the connection left open, after this many body bytes of the file. */
  stall?: { file: string; afterBytes: number; times: number };
  /** Respond 503 to Hub requests whose path contains `path`. */
  unavailable?: { path: string; times: number };
  /** Serve the whole file with status 200 even for a Range request. */
  ignoreRange?: { file: string };
  /** Flip one byte of the file in every response from now on. */
  corrupt?: { file: string };
  /** Redirect LFS downloads of the file to this URL instead of the CDN. */
  redirectTo?: { file: string; url: string };
}

export interface HubServer {
  url: string;
  cdnUrl: string;
  requests: RecordedRequest[];
  /** Body bytes sent per file name since the last `resetCounters()`. */
  bytesSent: Map<string, number>;
  faults: Faults;
  resetCounters(): void;
  close(): Promise<void>;
}

export function gitBlobSha1(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

export function sha256(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

export function randomCommit(): string {
  return randomBytes(20).toString("hex");
}

/** Starts the Hub and CDN servers on 127.0.0.1 with ephemeral ports. */
export async function startHubServer(repos: FixtureRepo[]): Promise<HubServer> {
  const requests: RecordedRequest[] = [];
  const bytesSent = new Map<string, number>();
  const faults: Faults = {};
  const lfsBySha = new Map<string, FixtureFile>();
  for (const repo of repos) for (const file of repo.files) if (file.lfs) lfsBySha.set(sha256(file.content), file);

  const record = (server: "hub" | "cdn", request: IncomingMessage) =>
    requests.push({
      server,
      method: request.method ?? "",
      path: decodeURI(request.url ?? ""),
      range: request.headers.range,
      authorization: request.headers.authorization,
    });

  const hub = createServer((request, response) => {
    record("hub", request);
    handleHub(request, response);
  });
  const cdn = createServer((request, response) => {
    record("cdn", request);
    const match = /^\/lfs\/([0-9a-f]{64})$/.exec(request.url ?? "");
    const file = match ? lfsBySha.get(match[1]) : undefined;
    if (!file) return sendStatus(response, 404);
    sendBody(request, response, file, {});
  });
  await Promise.all([listen(hub), listen(cdn)]);
  const url = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  const cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;

  function handleHub(request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? "/", url).pathname;
    if (faults.unavailable && path.includes(faults.unavailable.path) && faults.unavailable.times > 0) {
      faults.unavailable.times--;
      return sendStatus(response, 503);
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (api) {
      const repo = repos.find((candidate) => candidate.id === api[1]);
      if (!repo) return sendStatus(response, 404, { "X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found" });
      if (!matchesRevision(repo, decodeURIComponent(api[2]))) return sendStatus(response, 404, { "X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id" });
      const body = JSON.stringify({ id: repo.id, sha: repo.commit, siblings: repo.files.map((file) => ({ rfilename: file.name })) });
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(body);
      return;
    }

    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repo = resolve ? repos.find((candidate) => candidate.id === resolve[1]) : undefined;
    if (!resolve || !repo) return sendStatus(response, 404, { "X-Error-Code": "RepoNotFound" });
    if (!matchesRevision(repo, decodeURIComponent(resolve[2]))) return sendStatus(response, 404, { "X-Error-Code": "RevisionNotFound" });
    if (repo.requiredToken !== undefined && request.headers.authorization !== `Bearer ${repo.requiredToken}`) {
      return sendStatus(response, 401, {
        "X-Error-Code": "GatedRepo",
        "X-Error-Message": `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      });
    }
    const name = resolve[3].split("/").map(decodeURIComponent).join("/");
    const file = repo.files.find((candidate) => candidate.name === name);
    if (!file) return sendStatus(response, 404, { "X-Error-Code": "EntryNotFound" });

    if (file.lfs) {
      const digest = sha256(file.content);
      const location = faults.redirectTo?.file === file.name ? faults.redirectTo.url : `${cdnUrl}/lfs/${digest}`;
      response.writeHead(302, {
        Location: location,
        ETag: `"${digest}"`,
        "X-Repo-Commit": repo.commit,
        "X-Linked-Etag": `"${digest}"`,
        "X-Linked-Size": String(file.content.length),
      });
      response.end();
      return;
    }
    sendBody(request, response, file, { ETag: `"${gitBlobSha1(file.content)}"`, "X-Repo-Commit": repo.commit });
  }

  /** Sends a file, or the part a Range header requests, in 64 KiB writes, applying the faults. */
  function sendBody(request: IncomingMessage, response: ServerResponse, file: FixtureFile, headers: Record<string, string>): void {
    const total = file.content.length;
    let start = 0;
    const range = faults.ignoreRange?.file === file.name ? null : /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      if (start >= total) return sendStatus(response, 416, { "Content-Range": `bytes */${total}` });
    }
    let content = file.content;
    if (faults.corrupt?.file === file.name) {
      content = Buffer.from(file.content);
      content[Math.floor(total / 2)] ^= 0xff;
    }

    const status = range ? 206 : 200;
    const rangeHeader: Record<string, string> = range ? { "Content-Range": `bytes ${start}-${total - 1}/${total}` } : {};
    response.writeHead(status, { ...headers, ...rangeHeader, "Content-Length": String(total - start), "Accept-Ranges": "bytes" });
    if (request.method === "HEAD") return void response.end();

    const cut = takeFault(faults.cut, file.name);
    const stall = takeFault(faults.stall, file.name);
    let position = start;
    const writeNext = () => {
      while (position < total) {
        let end = Math.min(position + 65536, total);
        if (cut && end - start >= cut.afterBytes) end = start + cut.afterBytes;
        if (stall && end - start >= stall.afterBytes) end = start + stall.afterBytes;
        const chunk = content.subarray(position, end);
        position = end;
        bytesSent.set(file.name, (bytesSent.get(file.name) ?? 0) + chunk.length);
        if (cut && position - start >= cut.afterBytes) {
          // Flush what was written, then drop the connection mid-body.
          response.write(chunk, () => response.socket?.destroy());
          return;
        }
        if (stall && position - start >= stall.afterBytes) {
          // Send nothing more; the client must give up on its own.
          response.write(chunk);
          return;
        }
        if (!response.write(chunk)) return void response.once("drain", writeNext);
      }
      response.end();
    };
    writeNext();
  }

  return {
    url,
    cdnUrl,
    requests,
    bytesSent,
    faults,
    resetCounters() {
      requests.length = 0;
      bytesSent.clear();
    },
    async close() {
      await Promise.all([closeServer(hub), closeServer(cdn)]);
    },
  };
}

/** Returns the fault when it applies to the file and has uses left, using one up. */
function takeFault<T extends { file: string; times: number }>(fault: T | undefined, file: string): T | undefined {
  if (fault === undefined || fault.file !== file || fault.times <= 0) return undefined;
  fault.times--;
  return fault;
}

function matchesRevision(repo: FixtureRepo, revision: string): boolean {
  return revision === repo.commit || revision === "main" || (repo.branches ?? []).includes(revision);
}

function sendStatus(response: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...headers, "Content-Type": "text/plain" });
  response.end(`HTTP ${status}`);
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
