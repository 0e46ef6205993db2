// The server's one model, loaded lazily by the first call that needs it, so `initialize` and
// `tools/list` respond at once while the weights load.

import { DisposedError, NessoError } from "../errors.js";
import type { ChatModel } from "../engine/types.js";
import { createLogger } from "../logger.js";
import type { ModelGrammars } from "../tool-calling/grammar/model-grammars.js";
import { EngineLock, lockedChatModel } from "./engine-lock.js";

const log = createLogger("server");

/** Details of the loaded model that `nesso://model` reports. */
export interface ModelInfo {
  /** Absolute path of the model directory. */
  path: string;
  /** Hub repo id and commit, when the model came from the Hugging Face cache. */
  repo?: string;
  commit?: string;
  /** Geometry from config.json (hidden size, layers, heads, vocabulary, RoPE theta). */
  config: Record<string, unknown>;
  /** Weight storage, e.g. "bf16 (not quantized)". */
  quantization: string;
  /** KV cache positions of the session. */
  contextSize: number;
  /** Compute threads of the engine. */
  threads: number;
}

export interface LoadedModel {
  chatModel: ChatModel;
  info: ModelInfo;
  /**
   * Loads the grammars over the model's vocabulary (tool calls, JSON output) on the first call and
   * returns the same object afterwards. Absent when the model offers none.
   */
  grammars?: () => Promise<ModelGrammars>;
  /** Frees the session and the weights. */
  dispose(): void | Promise<void>;
}

/** Loads the model; the signal fires when the server closes during the load. */
export type ModelLoader = (signal: AbortSignal) => Promise<LoadedModel>;

export type ModelState = "not loaded" | "loading" | "ready" | "failed";

/**
 * Holds the lazily loaded model. Concurrent callers share one load. The next call retries a failed
 * load, so a model pulled while the server runs is picked up without a restart.
 */
export class ModelSlot {
  readonly lock = new EngineLock();
  readonly #loader: ModelLoader;
  readonly #closing = new AbortController();
  #loading: Promise<LoadedModel> | undefined;
  #loaded: LoadedModel | undefined;
  #locked: ChatModel | undefined;
  #lastError: Error | undefined;

  constructor(loader: ModelLoader) {
    this.#loader = loader;
  }

  get state(): ModelState {
    if (this.#loaded !== undefined) return "ready";
    if (this.#loading !== undefined) return "loading";
    return this.#lastError === undefined ? "not loaded" : "failed";
  }

  /** Info of the loaded model, or undefined before it is ready. */
  get info(): ModelInfo | undefined {
    return this.#loaded?.info;
  }

  /** Returns the loaded model's grammars, or undefined when it has none (or is not loaded). */
  async grammars(): Promise<ModelGrammars | undefined> {
    return this.#loaded?.grammars?.();
  }

  /** Error of the last failed load, while the state is "failed". */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /**
   * Returns the model behind the engine lock, loading it first if needed. The caller's signal
   * stops only its own wait; the load itself goes on for the next caller.
   */
  async get(signal?: AbortSignal): Promise<ChatModel> {
    if (this.#closing.signal.aborted) throw new DisposedError("the server's model");
    if (this.#locked !== undefined) return this.#locked;
    this.#loading ??= this.#load();
    const loading = this.#loading;
    if (signal === undefined) {
      await loading;
      return this.#locked!;
    }
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      loading.then(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
    return this.#locked!;
  }

  /** Disposes the model (after a load in progress ends). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new DisposedError("the server's model"));
    const loading = this.#loading;
    if (loading !== undefined) await loading.catch(() => undefined);
    const loaded = this.#loaded;
    this.#loaded = undefined;
    this.#locked = undefined;
    await loaded?.dispose();
  }

  async #load(): Promise<LoadedModel> {
    const started = Date.now();
    log.info("loading the model");
    try {
      const loaded = await this.#loader(this.#closing.signal);
      if (this.#closing.signal.aborted) {
        await loaded.dispose();
        throw this.#closing.signal.reason;
      }
      this.#loaded = loaded;
      this.#locked = lockedChatModel(loaded.chatModel, this.lock);
      this.#lastError = undefined;
      log.info(`model ${loaded.info.path} loaded in ${Date.now() - started} ms`);
      return loaded;
    } catch (error) {
      this.#lastError = asModelError(error);
      log.error(`loading the model failed: ${this.#lastError.message}`);
      throw this.#lastError;
    } finally {
      this.#loading = undefined;
    }
  }
}

/** Returns a NessoError unchanged, because its message already names the fix, and wraps anything else. */
function asModelError(error: unknown): Error {
  if (error instanceof NessoError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new NessoError("INVALID_MODEL", `loading the model failed: ${message}; check the model directory or download one with nesso-mcp pull`, { cause: error });
}
