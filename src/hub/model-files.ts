// The files of a model repo that the engine reads, and a check that a directory has the required
// ones. Only top-level files count, as in the repos mlx_lm.convert writes.

import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** Files pulled by exact name: config, safetensors index, tokenizer files, chat template, generation config, model card. */
const namedFiles = new Set([
  "config.json",
  "model.safetensors.index.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "chat_template.jinja",
  "chat_template.json",
  "generation_config.json",
  "README.md",
]);

/** Weight shards: `model.safetensors` or `model-00001-of-00002.safetensors`, the names mlx-lm loads. */
const weightPattern = /^model[^/]*\.safetensors$/;

/** Returns whether a repo file is one the engine needs. */
export function isModelFile(name: string): boolean {
  return namedFiles.has(name) || weightPattern.test(name);
}

/** Returns the repo files the engine needs, sorted. */
export function selectModelFiles(names: readonly string[]): string[] {
  return names.filter(isModelFile).sort();
}

/**
 * Returns the required files a model directory lacks: config.json, tokenizer.json and the weights
 * (every shard the safetensors index names, or at least one `model*.safetensors` without an index).
 * Returns [] for a complete directory.
 */
export async function findMissingModelFiles(dir: string): Promise<string[]> {
  let present: Set<string>;
  try {
    const entries = await readdir(dir);
    const checks = await Promise.all(entries.filter(isModelFile).map(async (name) => ((await isReadableFile(join(dir, name))) ? name : undefined)));
    present = new Set(checks.filter((name): name is string => name !== undefined));
  } catch {
    return ["config.json", "tokenizer.json", "model.safetensors"];
  }

  const missing = ["config.json", "tokenizer.json"].filter((name) => !present.has(name));
  if (present.has("model.safetensors.index.json")) {
    const shards = await indexedShards(join(dir, "model.safetensors.index.json"));
    missing.push(...shards.filter((shard) => !present.has(shard)));
  } else if (![...present].some((name) => weightPattern.test(name))) {
    missing.push("model.safetensors");
  }
  return missing;
}

/** Returns whether the path is a file, following symlinks, so a dangling cache link counts as missing. */
async function isReadableFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Returns the shard names of a safetensors index, or [] when it cannot be read (the engine reports that). */
async function indexedShards(path: string): Promise<string[]> {
  try {
    const index = JSON.parse(await readFile(path, "utf8")) as { weight_map?: Record<string, unknown> };
    const shards = Object.values(index.weight_map ?? {}).filter((value): value is string => typeof value === "string");
    return [...new Set(shards)].sort();
  } catch {
    return [];
  }
}
