// A loaded model: validated weights mmapped by the native addon, the tokenizer and the chat template.

import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Tokenizer } from "@huggingface/tokenizers";
import { DisposedError, NessoError, throwIfAborted } from "../errors.js";
import { createLogger } from "../logger.js";
import { ChatTemplate, type ChatTemplateOptions } from "./chat-template.js";
import { buildModelSpec, readCheckpointTensors, type CheckpointTensors } from "./checkpoint.js";
import { resolveModelConfig, type ModelConfig } from "./config.js";
import type { NativeModel, NativeModelConfig } from "./native-api.js";
import { loadNativeAddon } from "./native.js";
import { computeModelIdentity, PromptCache, type PromptCacheOptions } from "./prompt-cache.js";
import { Session, type SessionOptions } from "./session.js";
import { stopTokenIds } from "./stop.js";
import { readModelJson, TextTokenizer } from "./tokenizer.js";
import type { ChatMessage } from "./types.js";

const log = createLogger("engine");

export interface LoadOptions {
  /** Compute threads for prefill and decode (default: the physical core count the addon detects). */
  threads?: number;
  /** Cancels loading between steps; the native weight mapping itself is not interruptible. */
  signal?: AbortSignal;
  /**
   * Persistent prompt cache shared by the model's sessions: true for the defaults, an options
   * object, or false. Default: off, so nothing is written unless a caller asks for it.
   */
  promptCache?: boolean | PromptCacheOptions;
}

/** A model directory loaded into the native engine. Create sessions to generate. */
export class Model {
  /** Absolute path of the model directory. */
  readonly dir: string;
  /** Geometry and RoPE settings the engine runs with. */
  readonly config: NativeModelConfig;
  /** The @huggingface/tokenizers instance of tokenizer.json. */
  readonly tokenizer: Tokenizer;
  /** The tokenizer with the engine's encode/decode conventions and the streaming decoder. */
  readonly textTokenizer: TextTokenizer;
  readonly chatTemplate: ChatTemplate;
  /** Token ids that end a turn (see stopTokenIds). */
  readonly stopTokens: ReadonlySet<number>;
  /** Compute threads of the native thread pool. */
  readonly threads: number;
  /** The persistent prompt cache, or null when LoadOptions.promptCache left it off. */
  readonly promptCache: PromptCache | null;

  private native: NativeModel | null;
  private readonly sessions = new Set<Session>();
  /** Set by dispose() while sessions are still finishing a step; the last one to close unmaps. */
  private pendingNativeDispose: NativeModel | null = null;

  private constructor(
    dir: string,
    native: NativeModel,
    textTokenizer: TextTokenizer,
    chatTemplate: ChatTemplate,
    stopTokens: Set<number>,
    promptCache: PromptCache | null,
  ) {
    this.dir = dir;
    this.promptCache = promptCache;
    this.native = native;
    this.config = native.config;
    this.threads = native.threads;
    this.textTokenizer = textTokenizer;
    this.tokenizer = textTokenizer.tokenizer;
    this.chatTemplate = chatTemplate;
    this.stopTokens = stopTokens;
  }

  /**
   * Loads a model directory: config.json, *.safetensors (with or without
   * model.safetensors.index.json), tokenizer.json, tokenizer_config.json and the chat template
   * (chat_template.jinja or tokenizer_config.json's chat_template). Every header and shape is
   * validated before the native addon maps the weights.
   */
  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    const { signal } = options;
    throwIfAborted(signal, "Model.load");
    if (options.threads !== undefined && (!Number.isSafeInteger(options.threads) || options.threads < 1)) {
      throw new NessoError("INVALID_ARGUMENT", `Model.load: threads must be an integer >= 1, got ${options.threads}`);
    }
    const modelDir = resolve(dir);
    await checkDirectory(modelDir);

    // Cheap checks first: config.json and the safetensors headers, then the tokenizer (about a
    // second for a 128k vocabulary) and the chat template.
    const config = resolveModelConfig(await readModelJson(modelDir, "config.json"));
    const checkpoint = await readCheckpointTensors(modelDir);
    const promptCache = await openPromptCache(modelDir, checkpoint, options.promptCache);
    const generationEosIds = await readGenerationEosIds(modelDir);
    const textTokenizer = await TextTokenizer.load(modelDir);
    const chatTemplate = await ChatTemplate.load(modelDir, textTokenizer.config);
    const weights = buildModelSpec(config, checkpoint, { tokenizerVocabSize: textTokenizer.vocabSize });
    throwIfAborted(signal, "Model.load");

    const addon = loadNativeAddon();
    const threads = options.threads ?? addon.physicalCores();
    const spec = { ...weights, threads };
    const native = await addon.loadModel(spec);
    if (signal?.aborted) {
      native.dispose();
      throwIfAborted(signal, "Model.load");
    }
    // generation_config.json's eos_token_id replaces config.json's when present (as mlx-lm does).
    const stopTokens = stopTokenIds(textTokenizer, generationEosIds ?? config.eosTokenIds);
    log.info(`loaded ${modelDir}: ${describe(config, spec.config.vocabSize)}, ${spec.tensors[0]?.dtype ?? "?"}, ${threads} threads, stop ids ${[...stopTokens].join(",")}`);
    return new Model(modelDir, native, textTokenizer, chatTemplate, stopTokens, promptCache);
  }

  /** Creates a session with its own KV cache (contextSize default: max_position_embeddings). */
  createSession(options: SessionOptions = {}): Session {
    const native = this.requireNative();
    const contextSize = options.contextSize ?? this.config.maxContextSize;
    if (!Number.isSafeInteger(contextSize) || contextSize < 1 || contextSize > this.config.maxContextSize) {
      throw new NessoError("INVALID_ARGUMENT", `createSession: contextSize must be an integer from 1 to ${this.config.maxContextSize} (max_position_embeddings), got ${contextSize}`);
    }
    const kvCacheType = options.kvCacheType ?? "f16";
    if (kvCacheType !== "f16" && kvCacheType !== "f32") {
      throw new NessoError("INVALID_ARGUMENT", `createSession: kvCacheType must be "f16" or "f32", got ${JSON.stringify(kvCacheType)}`);
    }
    const session = new Session(this, native.createContext({ contextSize, kvCacheType }), () => this.onSessionClosed(session));
    this.sessions.add(session);
    return session;
  }

  /** Renders messages with the model's chat template (addGenerationPrompt default true). */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.chatTemplate.render(messages, options);
  }

  /** Encodes text without adding special tokens (a rendered prompt carries its own BOS). */
  encode(text: string): number[] {
    return this.textTokenizer.encode(text);
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.textTokenizer.decode(ids, options);
  }

  get disposed(): boolean {
    return this.native === null;
  }

  /**
   * Disposes every session, then unmaps the weights. Sessions that are generating finish their
   * current step first. Safe to call twice.
   */
  dispose(): void {
    const native = this.native;
    if (native === null) return;
    this.native = null;
    for (const session of [...this.sessions]) session.dispose();
    if (this.sessions.size === 0) native.dispose();
    else this.pendingNativeDispose = native;
  }

  private onSessionClosed(session: Session): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0 && this.pendingNativeDispose) {
      this.pendingNativeDispose.dispose();
      this.pendingNativeDispose = null;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private requireNative(): NativeModel {
    if (this.native === null) throw new DisposedError("Model");
    return this.native;
  }
}

async function checkDirectory(dir: string): Promise<void> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new NessoError("MODEL_NOT_FOUND", `model path ${dir} is a file, not a model directory; pass the directory that holds config.json, or download a model with nesso-mcp pull`);
  } catch (error) {
    if (error instanceof NessoError) throw error;
    throw new NessoError("MODEL_NOT_FOUND", `model directory ${dir} not found; download a model with nesso-mcp pull`, { cause: error });
  }
}

/** Creates the model's prompt cache when the load options turn it on. */
async function openPromptCache(modelDir: string, checkpoint: CheckpointTensors, option: LoadOptions["promptCache"]): Promise<PromptCache | null> {
  if (option === undefined || option === false) return null;
  const settings = option === true ? {} : option;
  if (typeof settings !== "object" || settings === null) {
    throw new NessoError("INVALID_ARGUMENT", `Model.load: promptCache must be true, false or an options object, got ${JSON.stringify(option)}`);
  }
  if (settings.enabled === false) return null;
  const cache = new PromptCache({ dir: settings.dir, maxBytes: settings.maxBytes, modelIdentity: await computeModelIdentity(modelDir, checkpoint) });
  log.debug(() => `prompt cache in ${cache.dir}, up to ${cache.maxBytes} bytes, model identity ${cache.modelIdentity}`);
  return cache;
}

/** eos_token_id of generation_config.json, or null when the file or key is absent. */
async function readGenerationEosIds(dir: string): Promise<number[] | null> {
  let json: unknown;
  try {
    json = await readModelJson(dir, "generation_config.json");
  } catch (error) {
    if (error instanceof NessoError && error.code === "MODEL_NOT_FOUND") return null;
    throw error;
  }
  const eos = (json as { eos_token_id?: unknown } | null)?.eos_token_id;
  const ids = Array.isArray(eos) ? eos : eos == null ? [] : [eos];
  const valid = ids.filter((id): id is number => Number.isSafeInteger(id) && (id as number) >= 0);
  if (valid.length !== ids.length) log.warn(`generation_config.json: ignoring eos_token_id entries that are not token ids: ${JSON.stringify(eos)}`);
  return valid.length > 0 ? valid : null;
}

function describe(config: ModelConfig, vocabSize: number): string {
  return `dim ${config.dim}, ${config.nLayers} layers, ${config.nHeads}/${config.nKvHeads} heads, head_dim ${config.headDim}, ffn ${config.ffnDim}, vocab ${vocabSize}`;
}
