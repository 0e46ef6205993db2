// The Hugging Face Hub cache layout, shared with huggingface_hub, mlx-lm and huggingface-cli:
//
//   <cache>/models--org--name/
//     blobs/<etag>                   file contents, named by the Hub's ETag (sha256 for LFS, git sha1 otherwise)
//     blobs/<etag>.incomplete        a download in progress, resumed from its length
//     refs/<revision>                the commit a branch or tag pointed to, without a trailing newline
//     snapshots/<commit>/<file>      relative symlink to ../../blobs/<etag>
//
// The cache directory is HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else `$HF_HOME/hub`, as in
// huggingface_hub `constants.py`.

import { copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { getRepoFolderName } from "@huggingface/hub";
import { createLogger } from "../logger.js";
import { isCommitHash } from "./repo-id.js";
import { expandHome, resolveHuggingFaceHome } from "./settings.js";

const log = createLogger("hub");

/** Returns the Hub cache directory from the environment (see the file comment for the order). */
export function resolveCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return resolve(expandHome(explicit));
  return resolve(resolveHuggingFaceHome(env), "hub");
}

/** Paths of one model repo inside the cache. */
export interface RepoCache {
  repo: string;
  /** `<cache>/models--org--name` */
  root: string;
  blobsDir: string;
  refsDir: string;
  snapshotsDir: string;
}

export function repoCache(cacheDir: string, repo: string): RepoCache {
  const root = join(cacheDir, getRepoFolderName({ name: repo, type: "model" }));
  return { repo, root, blobsDir: join(root, "blobs"), refsDir: join(root, "refs"), snapshotsDir: join(root, "snapshots") };
}

export function blobPath(cache: RepoCache, etag: string): string {
  return join(cache.blobsDir, etag);
}

export function snapshotDir(cache: RepoCache, commit: string): string {
  return join(cache.snapshotsDir, commit);
}

/**
 * Strips the quotes and the weak-validator prefix `W/` of an HTTP ETag, giving the name the blob
 * has in the cache.
 */
export function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
}

/** Returns the commit a revision resolves to in the cache, or undefined when the cache has no ref for it. */
export async function readRef(cache: RepoCache, revision: string): Promise<string | undefined> {
  if (isCommitHash(revision)) return revision;
  let text: string;
  try {
    text = await readFile(join(cache.refsDir, revision), "utf8");
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  const commit = text.trim();
  if (!isCommitHash(commit)) {
    log.warn(`cache ref ${join(cache.refsDir, revision)} contains "${commit.slice(0, 80)}", not a 40-hex commit; ignoring it`);
    return undefined;
  }
  return commit;
}

/**
 * Records that `revision` points to `commit`. The file contains the bare hash with no newline,
 * because huggingface_hub compares and reads it without stripping. An unchanged ref is not
 * rewritten, so a read-only shared cache still works. A new ref is written under a temporary
 * name and renamed, so a reader never sees a half-written ref.
 */
export async function writeRef(cache: RepoCache, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const path = join(cache.refsDir, revision);
  const current = await readFile(path, "utf8").catch(() => undefined);
  if (current === commit) return;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, commit);
  await rename(temporary, path);
}

/**
 * Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative symlink, so the cache can
 * be moved as a whole. Where symlinks are not allowed (Windows without developer mode), the blob
 * is copied instead, as huggingface_hub does. An existing entry is replaced atomically.
 */
export async function linkSnapshotFile(cache: RepoCache, commit: string, file: string, etag: string): Promise<void> {
  const linkPath = join(snapshotDir(cache, commit), file);
  const target = blobPath(cache, etag);
  await mkdir(dirname(linkPath), { recursive: true });

  const temporary = `${linkPath}.${process.pid}.tmp`;
  await rm(temporary, { force: true });
  try {
    await symlink(relative(dirname(linkPath), target), temporary);
  } catch (error) {
    log.warn(`cannot create a symlink in ${dirname(linkPath)} (${(error as Error).message}); copying the blob instead`);
    await copyFile(target, temporary);
  }
  await rename(temporary, linkPath);
}

/**
 * Returns the size of `snapshots/<commit>/<file>` when it exists and, if it is a symlink, its
 * blob exists too. Returns undefined for a missing file or a dangling link.
 */
export async function snapshotFileSize(cache: RepoCache, commit: string, file: string): Promise<number | undefined> {
  try {
    return (await stat(join(snapshotDir(cache, commit), file))).size;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Returns the size of a file, or undefined when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
