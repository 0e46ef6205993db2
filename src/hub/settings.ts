// Hub settings read from the environment with the names and defaults huggingface_hub uses
// (huggingface_hub `constants.py`): HF_ENDPOINT, HF_HUB_OFFLINE and the home-directory shorthand.

import { homedir } from "node:os";
import { join } from "node:path";
import { NessoError } from "../errors.js";

/** The model `pull`, `run` and `chat` use when no `--model` is given. */
export const defaultRepo = "mlx-community/nesso-0.4B-agentic-mlx";

/** The branch a pull resolves when no revision is given, as on the Hub. */
export const defaultRevision = "main";

/** The public Hub, used unless HF_ENDPOINT names another one (a mirror or a private Hub). */
export const defaultEndpoint = "https://huggingface.co";

/** Values huggingface_hub reads as "true" in a boolean environment variable (compared uppercased). */
const trueValues = new Set(["1", "ON", "YES", "TRUE"]);

function isTrue(value: string | undefined): boolean {
  return value !== undefined && trueValues.has(value.trim().toUpperCase());
}

/**
 * Returns the name of the variable that turns on offline mode (HF_HUB_OFFLINE, or the older
 * TRANSFORMERS_OFFLINE), or undefined when neither is set to 1/ON/YES/TRUE.
 */
export function offlineModeVariable(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (isTrue(env.HF_HUB_OFFLINE)) return "HF_HUB_OFFLINE";
  if (env.HF_HUB_OFFLINE === undefined || env.HF_HUB_OFFLINE === "") {
    if (isTrue(env.TRANSFORMERS_OFFLINE)) return "TRANSFORMERS_OFFLINE";
  }
  return undefined;
}

/** Returns the Hub base URL: the explicit value, else HF_ENDPOINT, else the public Hub, without a trailing slash. */
export function resolveEndpoint(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const source = explicit !== undefined ? "the endpoint option" : "HF_ENDPOINT";
  const value = (explicit ?? env.HF_ENDPOINT ?? "").trim();
  if (value === "") return defaultEndpoint;

  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new NessoError("INVALID_ARGUMENT", `Hub endpoint from ${source}: "${value}" is not a URL; set it to a base URL such as ${defaultEndpoint}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new NessoError("INVALID_ARGUMENT", `Hub endpoint from ${source}: "${value}" uses ${url.protocol} but only http: and https: are supported`);
  }
  return value.replace(/\/+$/, "");
}

/** Expands a leading `~` to the home directory, as Python's `os.path.expanduser` does. */
export function expandHome(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/") || path.startsWith("~\\")) return join(homedir(), path.slice(2));
  return path;
}

/** Returns HF_HOME, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function resolveHuggingFaceHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  const cacheHome = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), ".cache");
  return join(cacheHome, "huggingface");
}
