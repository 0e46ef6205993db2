// What `--model` names: a local model directory, or a Hub repo id looked up in the Hub cache without
// any network request. A missing model is a ModelNotFoundError whose message contains the exact
// `nesso-mcp pull` command. `ensureModel` lets a terminal front end offer that download instead.

import { stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { NessoError } from "../errors.js";
import { readRef, repoCache, resolveCacheDir, snapshotDir } from "./cache.js";
import { findMissingModelFiles } from "./model-files.js";
import { pullModel, type PullOptions } from "./pull.js";
import { looksLikeRepoId, validateRevision } from "./repo-id.js";
import { defaultRepo, defaultRevision, expandHome } from "./settings.js";

export interface ModelReference {
  /** The directory `Model.load` reads. */
  dir: string;
  /** The repo id, when the reference was resolved from the Hub cache. */
  repo?: string;
  revision?: string;
  /** The commit of the cached snapshot. */
  commit?: string;
}

export interface ResolveModelOptions {
  /** Branch, tag or commit of a repo id (default `main`); ignored for a directory. */
  revision?: string;
  /** Hub cache directory (default HF_HUB_CACHE, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Environment the cache location is read from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Directory relative paths are resolved against (default `process.cwd()`). */
  cwd?: string;
}

/** No model where the reference points. `pullCommand` is set when a pull would fix it. */
export class ModelNotFoundError extends NessoError {
  readonly repo: string | undefined;
  readonly revision: string | undefined;
  readonly cacheDir: string | undefined;
  readonly pullCommand: string | undefined;

  constructor(message: string, details: { repo?: string; revision?: string; cacheDir?: string } = {}) {
    super("MODEL_NOT_FOUND", message);
    this.name = "ModelNotFoundError";
    this.repo = details.repo;
    this.revision = details.revision;
    this.cacheDir = details.cacheDir;
    this.pullCommand = details.repo === undefined ? undefined : formatPullCommand(details.repo, details.revision);
  }
}

/** Returns the shell command that downloads a repo, e.g. `nesso-mcp pull org/name --revision v1`. */
export function formatPullCommand(repo: string, revision: string = defaultRevision): string {
  const quote = (text: string) => (/^[A-Za-z0-9_./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`);
  const revisionPart = revision === defaultRevision ? "" : ` --revision ${quote(revision)}`;
  return `nesso-mcp pull ${quote(repo)}${revisionPart}`;
}

/**
 * Resolves `--model` to a directory without any network request. A path (absolute, starting with
 * `.` or `~`, or an existing directory) is used as it is. Any other text is a repo id, looked up in
 * the Hub cache through `refs/<revision>`. With no reference the default repo is used.
 */
export async function resolveModelReference(reference: string | undefined, options: ResolveModelOptions = {}): Promise<ModelReference> {
  const text = reference === undefined || reference.trim() === "" ? defaultRepo : reference.trim();
  const cwd = options.cwd ?? process.cwd();

  if (looksLikePath(text)) return resolveDirectory(resolve(cwd, expandHome(text)), text);
  // A relative path without "./" is still a directory when one exists, as in transformers' from_pretrained.
  if ((await pathKind(resolve(cwd, text))) === "directory") return { dir: resolve(cwd, text) };
  if (!looksLikeRepoId(text)) {
    throw new ModelNotFoundError(`model "${text}" is neither an existing directory nor a Hub repo id (org/name); pass a model directory or a repo id such as ${defaultRepo}`);
  }
  return resolveCachedRepo(text, options);
}

function looksLikePath(text: string): boolean {
  return isAbsolute(text) || /^(\.{1,2}|~)([/\\]|$)/.test(text) || text.includes("\\") || text.split("/").length > 2;
}

async function resolveDirectory(dir: string, text: string): Promise<ModelReference> {
  const kind = await pathKind(dir);
  if (kind === "directory") return { dir };
  const problem = kind === "missing" ? "does not exist" : "is a file, not a directory";
  throw new ModelNotFoundError(`model directory "${text}" (${dir}) ${problem}; pass the directory that contains config.json, or a Hub repo id such as ${defaultRepo}`);
}

async function resolveCachedRepo(repo: string, options: ResolveModelOptions): Promise<ModelReference> {
  const revision = options.revision ?? defaultRevision;
  validateRevision(revision);
  const cacheDir = options.cacheDir ?? resolveCacheDir(options.env ?? process.env);
  const cache = repoCache(cacheDir, repo);
  const details = { repo, revision, cacheDir };
  const command = formatPullCommand(repo, revision);
  const named = revision === defaultRevision ? repo : `${repo} at ${revision}`;

  const commit = await readRef(cache, revision);
  const dir = commit === undefined ? undefined : snapshotDir(cache, commit);
  if (commit === undefined || dir === undefined || (await pathKind(dir)) !== "directory") {
    throw new ModelNotFoundError(`model ${named} is not in the Hugging Face cache ${cacheDir}; download it with: ${command}`, details);
  }

  const missing = await findMissingModelFiles(dir);
  if (missing.length > 0) {
    throw new ModelNotFoundError(`model ${named} in the Hugging Face cache is incomplete: ${dir} lacks ${missing.join(", ")}; finish the download with: ${command}`, details);
  }
  return { dir, repo, revision, commit };
}

async function pathKind(path: string): Promise<"directory" | "file" | "missing"> {
  try {
    return (await stat(path)).isDirectory() ? "directory" : "file";
  } catch {
    return "missing";
  }
}

export interface EnsureModelOptions extends ResolveModelOptions {
  /**
   * Asks the user whether to download a missing repo and resolves to true for yes. Pass it only
   * on a terminal, because without it a missing model is an error that gives the pull command.
   */
  confirmDownload?: (question: string) => Promise<boolean>;
  /** Options of the pull run after a yes; repo, revision, cache directory and environment come from the reference. */
  pull?: Omit<PullOptions, "repo" | "revision" | "cacheDir" | "env">;
}

/**
 * Resolves `--model` like `resolveModelReference`, but when a repo is missing from the cache and
 * `confirmDownload` resolves to true, pulls it first. Rethrows the ModelNotFoundError on a no.
 */
export async function ensureModel(reference: string | undefined, options: EnsureModelOptions = {}): Promise<ModelReference> {
  try {
    return await resolveModelReference(reference, options);
  } catch (error) {
    if (!(error instanceof ModelNotFoundError) || error.repo === undefined || options.confirmDownload === undefined) throw error;
    const question = `${error.repo} is not downloaded yet. Download it from the Hugging Face Hub into ${error.cacheDir} now?`;
    if (!(await options.confirmDownload(question))) throw error;
    await pullModel({ ...options.pull, repo: error.repo, revision: error.revision, cacheDir: error.cacheDir, env: options.env });
    return resolveModelReference(reference, options);
  }
}
