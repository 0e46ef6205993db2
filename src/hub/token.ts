// The Hugging Face access token, found where huggingface_hub looks for it: HF_TOKEN (or the older
// HUGGING_FACE_HUB_TOKEN), else the file HF_TOKEN_PATH, else `$HF_HOME/token`, which
// `huggingface-cli login` writes.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { NessoError } from "../errors.js";
import { isMissing } from "./cache.js";
import { expandHome, resolveHuggingFaceHome } from "./settings.js";

/** A token and where it came from; error messages name the source, never the token. */
export interface HubToken {
  value: string;
  /** "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "the token option" or the token file's path. */
  source: string;
}

/** Returns the path of the token file: HF_TOKEN_PATH, else `$HF_HOME/token`. */
export function tokenFilePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_TOKEN_PATH) return expandHome(env.HF_TOKEN_PATH);
  return join(resolveHuggingFaceHome(env), "token");
}

/**
 * Returns the token to send, or undefined when none is configured. An explicit token wins; blank
 * values count as unset. A token file that exists but cannot be read is an error, because
 * silently pulling without the token would turn into a confusing 401 later.
 */
export async function resolveToken(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<HubToken | undefined> {
  if (explicit !== undefined && explicit.trim() !== "") return { value: explicit.trim(), source: "the token option" };
  for (const name of ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]) {
    const value = env[name]?.trim();
    if (value) return { value, source: name };
  }

  const path = tokenFilePath(env);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (isMissing(error)) return undefined;
    const reason = (error as Error).message;
    throw new NessoError("DOWNLOAD", `reading the Hugging Face token file ${path} failed: ${reason}; fix its permissions or set HF_TOKEN`, { cause: error });
  }
  const value = text.trim();
  return value === "" ? undefined : { value, source: path };
}
