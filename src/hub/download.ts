// Downloads one file into `blobs/<etag>`. The bytes go to `blobs/<etag>.incomplete`, which a later
// attempt resumes with an HTTP Range request. The whole file is checked against the ETag's checksum
// and only then renamed into place, so a blob name never refers to a partial or corrupt file.

import { createReadStream } from "node:fs";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { createLogger } from "../logger.js";
import { fileSize } from "./cache.js";
import { createBlobHasher, type BlobHasher, type ExpectedChecksum } from "./checksum.js";
import { HubRequestError, requestHub, responseError, type RequestContext } from "./http.js";
import type { HubClient } from "./metadata.js";
import { withRetries } from "./retry.js";

const log = createLogger("hub");

export interface BlobDownloadRequest {
  client: HubClient;
  /** The file's resolve URL on the Hub. */
  url: string;
  /** Final path, `blobs/<etag>`; the partial file is this path plus `.incomplete`. */
  blobPath: string;
  /** Expected size in bytes. */
  size: number;
  /** Undefined when the ETag is not a checksum; then only the size is checked. */
  checksum: ExpectedChecksum | undefined;
  context: RequestContext;
  /** Extra attempts after network failures, stalls, HTTP 429 and 5xx. Each resumes where the last stopped. */
  retries: number;
  /** Wait before the first retry; it doubles for each further one. */
  retryDelayMs: number;
  /** A connection that delivers no byte for this long is dropped and retried. */
  readTimeoutMs: number;
  /** Called after each chunk with the number of bytes of the file on disk, resumed bytes included. */
  onBytes?: (bytesOnDisk: number) => void;
}

export interface BlobDownloadResult {
  /** Bytes received over the network, over all attempts. */
  bytesTransferred: number;
  /** Length of the partial file found when the download started (0 for a fresh one). */
  resumedFrom: number;
}

/**
 * Downloads, verifies and moves one blob into place, resuming and retrying as the request allows.
 * NOTE: unlike huggingface_hub, which takes a file lock in `.locks/`, nothing stops two processes
 * from downloading the same blob at once. Their writes to the shared partial file can interleave.
 * The checksum check catches most such cases, but not every ordering of truncate and rename.
 */
export async function downloadBlob(request: BlobDownloadRequest): Promise<BlobDownloadResult> {
  const incompletePath = `${request.blobPath}.incomplete`;
  const resumedFrom = Math.min((await fileSize(incompletePath)) ?? 0, request.size);
  const counter = { bytesTransferred: 0 };

  const policy = { retries: request.retries, retryDelayMs: request.retryDelayMs, signal: request.client.signal };
  await withRetries(policy, () => transferOnce(request, incompletePath, counter));

  await rename(incompletePath, request.blobPath);
  return { bytesTransferred: counter.bytesTransferred, resumedFrom };
}

/**
 * Brings the partial file to full length with one request and verifies it. Throws a retryable
 * HubRequestError when the connection fails or stalls, leaving the partial file to resume from.
 */
async function transferOnce(request: BlobDownloadRequest, incompletePath: string, counter: { bytesTransferred: number }): Promise<void> {
  let existing = await fileSize(incompletePath);
  let offset = existing ?? 0;
  if (offset > request.size) {
    log.warn(`${incompletePath} has ${offset} bytes but the file has ${request.size}; starting over`);
    await rm(incompletePath, { force: true });
    existing = undefined;
    offset = 0;
  }

  // An empty file is still requested once, so that the partial file exists to be verified.
  if (offset < request.size || existing === undefined) {
    await receive(request, incompletePath, offset, counter);
  }
  await verify(request, incompletePath);
}

/** Requests the bytes from `offset` on and appends them to the partial file. */
async function receive(request: BlobDownloadRequest, incompletePath: string, offset: number, counter: { bytesTransferred: number }): Promise<void> {
  const { client, context, size } = request;

  // A stalled connection is aborted through its own controller, so a stall can be distinguished
  // from the caller's abort.
  const stall = new AbortController();
  const signal = client.signal ? AbortSignal.any([client.signal, stall.signal]) : stall.signal;
  let stallTimer: NodeJS.Timeout | undefined;
  const armStallTimer = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => stall.abort(), request.readTimeoutMs);
  };

  const headers: Record<string, string> = { "Accept-Encoding": "identity" };
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  armStallTimer();
  let handle: FileHandle | undefined;
  let position = offset;

  try {
    // The stall timer bounds the wait for headers and for each chunk, so no overall timeout is set.
    const { response, url } = await requestHub({ ...client, timeoutMs: undefined, url: request.url, method: "GET", headers, signal, followCrossOrigin: true, context });
    if (response.status === 416 && offset > 0) {
      await response.body?.cancel();
      await rm(incompletePath, { force: true });
      throw new HubRequestError("DOWNLOAD", `${context.operation}: the server rejected resuming at byte ${offset} (HTTP 416); starting over`, {
        status: 416,
        retryable: true,
      });
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      throw responseError(response, url, context);
    }

    if (response.status === 206) {
      const start = Number(/^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1]);
      if (start !== offset) {
        await response.body.cancel();
        await rm(incompletePath, { force: true });
        throw new HubRequestError("DOWNLOAD", `${context.operation}: asked for bytes from ${offset} but got Content-Range "${response.headers.get("content-range")}"; starting over`, {
          status: 206,
          retryable: true,
        });
      }
    } else if (offset > 0) {
      log.info(`${context.operation}: the server ignored the Range request; downloading from byte 0`);
      position = 0;
    }

    handle = await openPartial(incompletePath, position, context);
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      armStallTimer();
      if (position + chunk.byteLength > size) {
        throw new HubRequestError("DOWNLOAD", `${context.operation}: the server sent more than the ${size} bytes it announced; the Hub's metadata and the file disagree, try again later`, {
          retryable: false,
        });
      }
      await writeChunk(handle, chunk, position, incompletePath, context);
      position += chunk.byteLength;
      counter.bytesTransferred += chunk.byteLength;
      request.onBytes?.(position);
    }
    if (position < size) {
      throw new HubRequestError("DOWNLOAD", `${context.operation}: the response ended after ${position} of ${size} bytes; the partial file ${incompletePath} is kept and the next attempt resumes from it`, {
        retryable: true,
      });
    }
    await handle.sync();
  } catch (error) {
    if (error instanceof HubRequestError) throw error;
    if (client.signal?.aborted) throw client.signal.reason;
    const resumeNote = `the partial file ${incompletePath} is kept and the next attempt resumes from it`;
    if (stall.signal.aborted) {
      throw new HubRequestError("DOWNLOAD", `${context.operation}: no data for ${request.readTimeoutMs} ms after byte ${position} of ${size}; ${resumeNote}`, { retryable: true, cause: error });
    }
    const reason = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new HubRequestError("DOWNLOAD", `${context.operation}: the connection broke after byte ${position} of ${size} (${reason}); ${resumeNote}`, { retryable: true, cause: error });
  } finally {
    clearTimeout(stallTimer);
    await handle?.close();
  }
}

/** Opens the partial file for writing at `position`, truncating it to that length. */
async function openPartial(path: string, position: number, context: RequestContext): Promise<FileHandle> {
  try {
    const handle = await open(path, position > 0 ? "r+" : "w");
    await handle.truncate(position);
    return handle;
  } catch (error) {
    throw diskError(error, `opening ${path}`, context);
  }
}

async function writeChunk(handle: FileHandle, chunk: Uint8Array, position: number, path: string, context: RequestContext): Promise<void> {
  try {
    let written = 0;
    while (written < chunk.byteLength) {
      const { bytesWritten } = await handle.write(chunk, written, chunk.byteLength - written, position + written);
      written += bytesWritten;
    }
  } catch (error) {
    throw diskError(error, `writing ${path}`, context);
  }
}

function diskError(error: unknown, operation: string, context: RequestContext): HubRequestError {
  const code = (error as NodeJS.ErrnoException).code;
  const fix = code === "ENOSPC" ? "free disk space or point HF_HUB_CACHE at a larger disk" : "check the permissions of the cache directory or set HF_HUB_CACHE";
  return new HubRequestError("DOWNLOAD", `${context.operation}: ${operation} failed: ${(error as Error).message}; ${fix}`, { retryable: false, cause: error });
}

/**
 * Hashes the complete partial file and compares it with the ETag's checksum. A mismatch deletes
 * the partial file, because resuming from corrupt bytes could never succeed.
 */
async function verify(request: BlobDownloadRequest, incompletePath: string): Promise<void> {
  const { checksum, context, size, client } = request;
  const actualSize = (await fileSize(incompletePath)) ?? 0;
  if (actualSize !== size) {
    await rm(incompletePath, { force: true });
    throw new HubRequestError("DOWNLOAD", `${context.operation}: the downloaded file has ${actualSize} bytes but the Hub announced ${size}; the partial file was deleted, run the pull again`, {
      retryable: false,
    });
  }
  if (checksum === undefined) {
    log.warn(`${context.operation}: the ETag is not a sha256 or git blob id, so only the size (${size} bytes) was checked`);
    return;
  }

  const hasher = createBlobHasher(checksum.algorithm, size);
  await hashFile(incompletePath, hasher, client.signal);
  const actual = hasher.digest();
  if (actual !== checksum.hex) {
    await rm(incompletePath, { force: true });
    throw new HubRequestError(
      "DOWNLOAD",
      `${context.operation}: checksum mismatch, the ${checksum.algorithm} of the ${size} downloaded bytes is ${actual} but the Hub's ETag is ${checksum.hex}; ` +
        `the transfer was corrupted, so the partial file was deleted; run the pull again`,
      { retryable: false },
    );
  }
}

async function hashFile(path: string, hasher: BlobHasher, signal: AbortSignal | undefined): Promise<void> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20, signal });
  try {
    for await (const chunk of stream) hasher.update(chunk as Buffer);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}
