// `nesso-mcp pull`: brings the files the engine needs from a Hub model repo into the shared Hub
// cache, reusing every blob that huggingface_hub, mlx-lm, huggingface-cli or an earlier pull left.

import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { NessoError, throwIfAborted } from "../errors.js";
import { createLogger } from "../logger.js";
import {
  blobPath,
  fileSize,
  linkSnapshotFile,
  readRef,
  repoCache,
  resolveCacheDir,
  snapshotDir,
  snapshotFileSize,
  writeRef,
  type RepoCache,
} from "./cache.js";
import { expectedChecksum } from "./checksum.js";
import { downloadBlob } from "./download.js";
import { fetchFileMetadata, fetchRepoRevision, resolveUrl, type FileMetadata, type HubClient } from "./metadata.js";
import { findMissingModelFiles, selectModelFiles } from "./model-files.js";
import type { PullProgressEvent } from "./progress.js";
import { validateRepoId, validateRevision } from "./repo-id.js";
import { withRetries, type RetryPolicy } from "./retry.js";
import { defaultRepo, defaultRevision, offlineModeVariable, resolveEndpoint } from "./settings.js";
import { resolveToken } from "./token.js";

const log = createLogger("hub");

export interface PullOptions {
  /** Hub model repo id (default `mlx-community/nesso-0.4B-agentic-mlx`). */
  repo?: string;
  /** Branch, tag or 40-hex commit (default `main`). */
  revision?: string;
  /** Hub cache directory (default HF_HUB_CACHE, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Access token (default HF_TOKEN, else the token file `huggingface-cli login` writes). */
  token?: string;
  /** Hub base URL (default HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** Use only the cache and send no request (default: on when HF_HUB_OFFLINE is 1/ON/YES/TRUE). */
  offline?: boolean;
  /** Environment the defaults above are read from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** HTTP client (default the global `fetch`); every request and redirect hop goes through it. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Receives plan, per-file and completion events; `createProgressReporter` turns them into output. */
  onProgress?: (event: PullProgressEvent) => void;
  /** Extra attempts per request after network failures, timeouts, stalls, HTTP 429 and 5xx (default 4). */
  retries?: number;
  /** Wait before the first retry in ms, doubled for each further one (default 1000). */
  retryDelayMs?: number;
  /**
   * Drop and retry a download that sends nothing for this many ms, and time out a metadata
   * request that takes longer (default 30000).
   */
  readTimeoutMs?: number;
}

export interface PulledFile {
  name: string;
  bytes: number;
  /** True when bytes were transferred for this file in this pull (also for a resumed file). */
  downloaded: boolean;
}

export interface PullResult {
  repo: string;
  revision: string;
  /** The commit the revision pointed to, which names the snapshot directory. */
  commit: string;
  /** `<cache>/models--org--name/snapshots/<commit>`, a model directory `Model.load` accepts. */
  snapshotDir: string;
  files: PulledFile[];
}

const pullDefaults = { retries: 4, retryDelayMs: 1000, readTimeoutMs: 30_000 };

/** The action a pull takes for one file, decided before any byte is downloaded. */
type FilePlan =
  | { name: string; bytes: number; action: "keep" }
  | { name: string; bytes: number; action: "link"; metadata: FileMetadata }
  | { name: string; bytes: number; action: "download"; metadata: FileMetadata };

/**
 * Downloads the engine's files of a model repo at a revision into the Hub cache and returns the
 * snapshot directory. Files already in the snapshot are not requested again; blobs already in the
 * cache are linked without downloading. The ref `refs/<revision>` is written last, so an
 * interrupted pull leaves the previous snapshot of that revision in use.
 */
export async function pullModel(options: PullOptions = {}): Promise<PullResult> {
  const env = options.env ?? process.env;
  const repo = options.repo ?? defaultRepo;
  const revision = options.revision ?? defaultRevision;
  validateRepoId(repo);
  validateRevision(revision);
  validateNumberOptions(options);
  const cache = repoCache(options.cacheDir ?? resolveCacheDir(env), repo);
  throwIfAborted(options.signal, `pull of ${repo}`);

  let offlineSource = offlineModeVariable(env);
  if (options.offline !== undefined) offlineSource = options.offline ? "the offline option" : undefined;
  if (offlineSource !== undefined) return pullFromCache(cache, revision, offlineSource, options);

  const client: HubClient = {
    endpoint: resolveEndpoint(options.endpoint, env),
    token: await resolveToken(options.token, env),
    // Looked up at call time, so a fetch installed later (a proxy, a test guard) is used.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    signal: options.signal,
    timeoutMs: options.readTimeoutMs ?? pullDefaults.readTimeoutMs,
  };
  const policy: RetryPolicy = { retries: options.retries ?? pullDefaults.retries, retryDelayMs: options.retryDelayMs ?? pullDefaults.retryDelayMs, signal: options.signal };
  log.info(`pulling ${repo} at ${revision} from ${client.endpoint} into ${cache.root}`);

  const { commit, files } = await withRetries(policy, () => fetchRepoRevision(client, repo, revision));
  const names = selectModelFiles(files);
  checkRepoHasModel(repo, revision, files, names);

  const plans = await planFiles(client, cache, commit, names, policy);
  options.onProgress?.({
    kind: "plan",
    repo,
    commit,
    files: plans.map((plan) => ({ name: plan.name, bytes: plan.bytes, cached: plan.action !== "download" })),
    bytesToDownload: plans.reduce((sum, plan) => sum + (plan.action === "download" ? plan.bytes : 0), 0),
  });

  await mkdir(cache.blobsDir, { recursive: true });
  const pulled: PulledFile[] = [];
  let bytesTransferred = 0;
  for (const plan of plans) {
    throwIfAborted(options.signal, `pull of ${repo}`);
    if (plan.action === "download") bytesTransferred += await downloadFile(client, cache, repo, commit, plan, options);
    if (plan.action !== "keep") await linkSnapshotFile(cache, commit, plan.name, plan.metadata.etag);
    pulled.push({ name: plan.name, bytes: plan.bytes, downloaded: plan.action === "download" });
  }

  await writeRef(cache, revision, commit);
  const result = { repo, revision, commit, snapshotDir: snapshotDir(cache, commit), files: pulled };
  options.onProgress?.({ kind: "done", snapshotDir: result.snapshotDir, files: pulled.length, bytesTransferred });
  return result;
}

/** Throws INVALID_ARGUMENT for a retry or timeout option outside its range. */
function validateNumberOptions(options: PullOptions): void {
  const rules: [keyof PullOptions, number | undefined, number, string][] = [
    ["retries", options.retries, 0, "an integer >= 0"],
    ["retryDelayMs", options.retryDelayMs, 0, "an integer >= 0"],
    ["readTimeoutMs", options.readTimeoutMs, 1, "an integer >= 1"],
  ];
  for (const [name, value, minimum, rule] of rules) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < minimum)) {
      throw new NessoError("INVALID_ARGUMENT", `pullModel: option ${name} must be ${rule}, got ${JSON.stringify(value)}`);
    }
  }
}

/** Rejects a repo that lacks config.json or safetensors weights, before anything is downloaded. */
function checkRepoHasModel(repo: string, revision: string, files: string[], names: string[]): void {
  const hasWeights = names.some((name) => /\.safetensors$/.test(name));
  if (names.includes("config.json") && hasWeights) return;
  const listed = files.slice(0, 12).join(", ") + (files.length > 12 ? `, … (${files.length} files)` : "");
  throw new NessoError(
    "INVALID_MODEL",
    `pull of ${repo} at ${revision}: the repo has no ${hasWeights ? "config.json" : "model*.safetensors weights"}, so it is not a checkpoint nesso-mcp can run ` +
      `(its files: ${listed || "none"}); pull an MLX or safetensors Llama repo such as ${defaultRepo}`,
  );
}

/** Decides per file whether the snapshot already has it, a cached blob can be linked, or it must be downloaded. */
async function planFiles(client: HubClient, cache: RepoCache, commit: string, names: string[], policy: RetryPolicy): Promise<FilePlan[]> {
  const plans: FilePlan[] = [];
  for (const name of names) {
    throwIfAborted(client.signal, `pull of ${cache.repo}`);

    // A snapshot entry at a commit never changes, so an entry that resolves to a file is final.
    const snapshotSize = await snapshotFileSize(cache, commit, name);
    if (snapshotSize !== undefined) {
      plans.push({ name, bytes: snapshotSize, action: "keep" });
      continue;
    }

    const metadata = await withRetries(policy, () => fetchFileMetadata(client, cache.repo, commit, name));
    if (metadata.commit !== undefined && metadata.commit !== commit) {
      log.warn(`${name} of ${cache.repo}: the Hub served commit ${metadata.commit} although ${commit} was requested`);
    }
    const cachedSize = await fileSize(blobPath(cache, metadata.etag));
    if (cachedSize === metadata.size) {
      plans.push({ name, bytes: metadata.size, action: "link", metadata });
      continue;
    }
    if (cachedSize !== undefined) {
      log.warn(`blob ${blobPath(cache, metadata.etag)} has ${cachedSize} bytes but ${name} has ${metadata.size}; downloading it again`);
    }
    plans.push({ name, bytes: metadata.size, action: "download", metadata });
  }
  return plans;
}

/** Downloads one planned file into its blob and returns the bytes transferred. */
async function downloadFile(client: HubClient, cache: RepoCache, repo: string, commit: string, plan: FilePlan & { action: "download" }, options: PullOptions): Promise<number> {
  const target = blobPath(cache, plan.metadata.etag);
  const resumedFrom = Math.min((await fileSize(`${target}.incomplete`)) ?? 0, plan.bytes);
  options.onProgress?.({ kind: "file-start", file: plan.name, bytes: plan.bytes, resumedFrom });
  if (resumedFrom > 0) log.info(`resuming ${plan.name} of ${repo} at byte ${resumedFrom} of ${plan.bytes}`);

  const { bytesTransferred } = await downloadBlob({
    client,
    url: resolveUrl(client.endpoint, repo, commit, plan.name),
    blobPath: target,
    size: plan.bytes,
    checksum: expectedChecksum(plan.metadata.etag, plan.metadata.lfs),
    context: { operation: `downloading ${plan.name} of ${repo}`, endpoint: client.endpoint, repo, revision: commit, file: plan.name, token: client.token },
    retries: options.retries ?? pullDefaults.retries,
    retryDelayMs: options.retryDelayMs ?? pullDefaults.retryDelayMs,
    readTimeoutMs: options.readTimeoutMs ?? pullDefaults.readTimeoutMs,
    onBytes: (bytesOnDisk) => options.onProgress?.({ kind: "file-progress", file: plan.name, bytes: plan.bytes, bytesOnDisk }),
  });
  options.onProgress?.({ kind: "file-done", file: plan.name, bytes: plan.bytes, bytesTransferred });
  return bytesTransferred;
}

/**
 * Returns the cached snapshot of a revision without any request, as huggingface_hub does in offline
 * mode. Fails with MODEL_NOT_FOUND when the cache has no complete snapshot for the revision.
 */
async function pullFromCache(cache: RepoCache, revision: string, offlineSource: string, options: PullOptions): Promise<PullResult> {
  const offline = `offline mode is on (${offlineSource})`;
  const commit = await readRef(cache, revision);
  if (commit === undefined) {
    throw new NessoError(
      "MODEL_NOT_FOUND",
      `pull of ${cache.repo} at ${revision}: ${offline} and the cache has no ref ${join(cache.refsDir, revision)}; turn offline mode off to download it`,
    );
  }
  const dir = snapshotDir(cache, commit);
  const missing = await findMissingModelFiles(dir);
  if (missing.length > 0) {
    throw new NessoError(
      "MODEL_NOT_FOUND",
      `pull of ${cache.repo} at ${revision}: ${offline} and the cached snapshot ${dir} lacks ${missing.join(", ")}; turn offline mode off to download ${missing.length === 1 ? "it" : "them"}`,
    );
  }

  const names = selectModelFiles(await readdir(dir));
  const files: PulledFile[] = [];
  for (const name of names) {
    const bytes = await snapshotFileSize(cache, commit, name);
    if (bytes !== undefined) files.push({ name, bytes, downloaded: false });
  }
  options.onProgress?.({ kind: "plan", repo: cache.repo, commit, files: files.map((file) => ({ ...file, cached: true })), bytesToDownload: 0 });
  options.onProgress?.({ kind: "done", snapshotDir: dir, files: files.length, bytesTransferred: 0 });
  return { repo: cache.repo, revision, commit, snapshotDir: dir, files };
}
