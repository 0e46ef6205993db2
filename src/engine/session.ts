// A session: one KV cache and the generation loop over it (prefill, then sample/decode steps).

import { DisposedError, NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import type { KvCacheType, NativeContext, NativeSamplerParams } from "./native-api.js";
import { StopStringMatcher } from "./stop.js";
import type { FinishReason, FinishRecord, GenerateOptions, GenerationRecord } from "./types.js";
import type { Model } from "./model.js";

const log = createLogger("engine");

/** GenerateOptions plus the engine-only settings of Session.generate. */
export interface SessionGenerateOptions extends GenerateOptions {
  /**
   * Length of the prompt prefix to restore from and save to the model's persistent prompt cache,
   * typically the system turn with the tools (default 0: none). Used only when the model was
   * loaded with a promptCache and the value is less than the prompt's length.
   */
  cachePrefixTokens?: number;
}

export interface SessionOptions {
  /** KV cache positions (default: the model's max_position_embeddings, 4096 for Nesso). */
  contextSize?: number;
  /**
   * Element type of the KV cache (default "f16", as llama.cpp: half the memory, 4096 positions of
   * Nesso take 168 MB instead of 336 MB). "f32" stores keys and values exactly.
   */
  kvCacheType?: KvCacheType;
}

/** GenerateOptions with every default applied. */
interface ResolvedGenerateOptions {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  seed: number;
  stop: string[];
}

const defaults: ResolvedGenerateOptions = {
  maxTokens: 512,
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repeatPenalty: 1,
  repeatLastN: 64,
  seed: 0,
  stop: [],
};

function resolveOptions(options: GenerateOptions): ResolvedGenerateOptions {
  const resolved = { ...defaults };
  const check = (name: keyof ResolvedGenerateOptions, valid: (value: number) => boolean, rule: string) => {
    const value = options[name as keyof GenerateOptions];
    if (value === undefined) return;
    if (typeof value !== "number" || !valid(value)) {
      throw new NessoError("INVALID_ARGUMENT", `generate: option ${name} must be ${rule}, got ${JSON.stringify(value)}`);
    }
    (resolved as unknown as Record<string, number>)[name] = value;
  };
  check("maxTokens", (v) => Number.isSafeInteger(v) && v >= 0, "an integer >= 0");
  // The bounds match the native sampler's, so a bad value fails before the prompt is evaluated.
  check("temperature", (v) => Number.isFinite(v) && v >= 0 && v <= 1e6, "a number from 0 to 1e6");
  check("topK", (v) => Number.isSafeInteger(v) && v >= 0, "an integer >= 0 (0 turns it off)");
  check("topP", (v) => v > 0 && v <= 1, "in (0, 1] (1 turns it off)");
  check("minP", (v) => v >= 0 && v <= 1, "in [0, 1] (0 turns it off)");
  check("repeatPenalty", (v) => Number.isFinite(v) && v >= 1e-6 && v <= 1e6, "a number from 1e-6 to 1e6 (1 turns it off)");
  check("repeatLastN", (v) => Number.isSafeInteger(v) && v >= 0, "an integer >= 0");
  check("seed", (v) => Number.isSafeInteger(v), "an integer");
  if (options.stop !== undefined) {
    if (!Array.isArray(options.stop) || !options.stop.every((stop) => typeof stop === "string" && stop !== "")) {
      throw new NessoError("INVALID_ARGUMENT", `generate: option stop must be a list of non-empty strings, got ${JSON.stringify(options.stop)}`);
    }
    resolved.stop = options.stop;
  }
  return resolved;
}

/** Derives the sampler seed of one step from the generation seed, so a run is reproducible step by step. */
function stepSeed(seed: number, step: number): number {
  let hash = (seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b) >>> 0;
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35) >>> 0;
  return (hash ^ (hash >>> 16)) >>> 0;
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let i = 0;
  while (i < limit && a[i] === b[i]) i++;
  return i;
}

/**
 * A conversation state on one KV cache. One generation runs at a time; further generate() calls
 * wait their turn. A new prompt that shares a prefix with the tokens in the cache evaluates only
 * the tokens after that prefix.
 */
export class Session {
  readonly contextSize: number;
  private readonly model: Model;
  private context: NativeContext | null;
  private readonly onClosed: () => void;
  /** Token ids whose keys and values are in the KV cache, in position order. */
  private cached: number[] = [];
  private queueTail: Promise<void> = Promise.resolve();
  private busy = false;
  private disposeRequested = false;

  /** Created by Model.createSession. */
  constructor(model: Model, context: NativeContext, onClosed: () => void) {
    this.model = model;
    this.context = context;
    this.contextSize = context.contextSize;
    this.onClosed = onClosed;
  }

  /** Token ids currently in the KV cache. */
  get tokens(): readonly number[] {
    return this.cached;
  }

  get disposed(): boolean {
    return this.disposeRequested;
  }

  /**
   * Generates a continuation of `prompt` (text, encoded without added special tokens, or token
   * ids). Yields one record per generated token, then a finish record whose finishReason is
   * "stop" (stop token, stop string or a completed constraint), "length" (maxTokens),
   * "abort" (options.signal) or "context_full" (the prompt, or prompt plus output, reached
   * contextSize). The token that ends a turn (e.g. `<|im_end|>`) is yielded with text "" or with
   * text that was held back. Breaking out of the loop early frees the session for the next call.
   */
  async *generate(prompt: string | readonly number[], options: SessionGenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
    const settings = resolveOptions(options);
    const cachePrefix = options.cachePrefixTokens ?? 0;
    if (!Number.isSafeInteger(cachePrefix) || cachePrefix < 0) {
      throw new NessoError("INVALID_ARGUMENT", `generate: option cachePrefixTokens must be an integer >= 0, got ${JSON.stringify(options.cachePrefixTokens)}`);
    }
    const { signal, constraint } = options;
    const promptTokens = typeof prompt === "string" ? this.model.encode(prompt) : Array.from(prompt);
    this.checkPromptTokens(promptTokens);

    const release = await this.acquire(signal);
    if (release === null) {
      yield finishRecord("abort", "", promptTokens.length, 0, 0, 0, 0);
      return;
    }
    const context = this.requireContext(release);
    const onAbort = () => context.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      yield* this.run(context, promptTokens, settings, signal, constraint, cachePrefix);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      release();
    }
  }

  private async *run(
    context: NativeContext,
    promptTokens: number[],
    settings: ResolvedGenerateOptions,
    signal: AbortSignal | undefined,
    constraint: GenerateOptions["constraint"],
    cachePrefixTokens: number,
  ): AsyncGenerator<GenerationRecord, void, undefined> {
    const promptCount = promptTokens.length;
    if (signal?.aborted) {
      yield finishRecord("abort", "", promptCount, 0, 0, 0, 0);
      return;
    }
    if (promptCount > this.contextSize) {
      log.warn(`generate: the prompt has ${promptCount} tokens but the context has room for ${this.contextSize}; nothing was evaluated (shorten the prompt or create the session with a larger contextSize)`);
      yield finishRecord("context_full", "", promptCount, 0, 0, 0, 0);
      return;
    }

    // Prefix reuse: keep the cached tokens the prompt starts with; at least one prompt token is
    // evaluated so the logits of the last position are fresh.
    const prefillStart = performance.now();
    let reused = Math.min(commonPrefixLength(this.cached, promptTokens), promptCount - 1);

    // The persistent prompt cache serves the prefix when the in-memory cache contains less of it.
    const promptCache = this.model.promptCache;
    const cachePrefix = promptCache !== null && cachePrefixTokens < promptCount ? promptTokens.slice(0, cachePrefixTokens) : [];
    let restored = 0;
    if (promptCache !== null && cachePrefix.length > reused && (await promptCache.restore(context, cachePrefix))) {
      this.cached = cachePrefix.slice();
      reused = restored = cachePrefix.length;
    }
    context.rewind(reused);
    this.cached.length = reused;
    // eval() clears the cancel flag, so an abort that arrived while the file was read is checked here.
    if (signal?.aborted) {
      yield finishRecord("abort", "", promptCount, reused, 0, performance.now() - prefillStart, 0, restored);
      return;
    }

    const prefill = await context.eval(Int32Array.from(promptTokens.slice(reused)));
    this.cached.push(...promptTokens.slice(reused, reused + prefill.evaluated));
    if (prefill.cancelled || signal?.aborted) {
      yield finishRecord("abort", "", promptCount, reused, 0, performance.now() - prefillStart, 0, restored);
      return;
    }
    if (promptCache !== null && cachePrefix.length > 0 && restored === 0) await promptCache.save(context, cachePrefix);
    const prefillMs = performance.now() - prefillStart;

    const decodeStart = performance.now();
    const decoder = this.model.textTokenizer.createStreamDecoder();
    const stopStrings = new StopStringMatcher(settings.stop);
    let text = "";
    let generated = 0;
    let reason: FinishReason | null = settings.maxTokens === 0 ? "length" : null;

    while (reason === null) {
      if (signal?.aborted || this.disposeRequested) {
        reason = "abort";
        break;
      }
      const tokenId = context.sample(this.samplerParams(settings, generated), constraint?.mask() ?? null);
      constraint?.accept(tokenId);
      generated++;

      let piece: string;
      if (this.model.stopTokens.has(tokenId)) {
        reason = "stop";
        piece = stopStrings.push(decoder.flush()).text + stopStrings.flush();
      } else {
        const match = stopStrings.push(decoder.push(tokenId));
        piece = match.text;
        if (match.stopped) reason = "stop";
        else if (constraint?.isComplete()) reason = "stop";
        else if (generated >= settings.maxTokens) reason = "length";
        else if (context.length >= this.contextSize) reason = "context_full";
        // The last token carries whatever text was held back.
        if (reason !== null && !match.stopped) piece += stopStrings.push(decoder.flush()).text + stopStrings.flush();
      }
      text += piece;
      yield { kind: "token", tokenId, text: piece };
      if (reason !== null) break;

      const step = await context.eval(Int32Array.of(tokenId));
      if (step.evaluated === 1) this.cached.push(tokenId);
      if (step.cancelled) reason = "abort";
    }
    yield finishRecord(reason, text, promptCount, reused, generated, prefillMs, performance.now() - decodeStart, restored);
  }

  /**
   * Copies the logits of the last evaluated position ([vocabSize] float32; ids the tokenizer does
   * not have are -Infinity). After generate() they belong to the last token fed to the model.
   */
  getLogits(): Float32Array {
    if (this.busy) throw new NessoError("INVALID_ARGUMENT", "Session.getLogits: a generation is running; read the logits after it finishes");
    return this.requireContext().getLogits();
  }

  /** Forgets the cached tokens (the next prompt is evaluated from position 0). */
  reset(): void {
    if (this.busy) throw new NessoError("INVALID_ARGUMENT", "Session.reset: a generation is running; wait for it to finish or abort it first");
    this.requireContext().rewind(0);
    this.cached = [];
  }

  /**
   * Frees the KV cache. A running generation stops after its current step and the cache is freed
   * when it returns. Safe to call twice.
   */
  dispose(): void {
    if (this.disposeRequested) return;
    this.disposeRequested = true;
    if (this.busy) {
      this.context?.cancel();
      return;
    }
    this.closeContext();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private closeContext(): void {
    const context = this.context;
    if (context === null) return;
    this.context = null;
    context.dispose();
    this.onClosed();
  }

  private samplerParams(settings: ResolvedGenerateOptions, step: number): NativeSamplerParams {
    const penaltyWindow = settings.repeatPenalty !== 1 && settings.repeatLastN > 0 ? this.cached.slice(-settings.repeatLastN) : null;
    return {
      temperature: settings.temperature,
      topK: settings.topK,
      topP: settings.topP,
      minP: settings.minP,
      repeatPenalty: settings.repeatPenalty,
      penaltyTokens: penaltyWindow ? Int32Array.from(penaltyWindow) : null,
      seed: stepSeed(settings.seed, step),
    };
  }

  private checkPromptTokens(tokens: number[]): void {
    if (tokens.length === 0) throw new NessoError("INVALID_ARGUMENT", "generate: the prompt is empty; pass at least one token");
    const vocabSize = this.model.config.vocabSize;
    const bad = tokens.findIndex((id) => !Number.isSafeInteger(id) || id < 0 || id >= vocabSize);
    if (bad !== -1) {
      throw new NessoError("INVALID_ARGUMENT", `generate: prompt token ${bad} is ${tokens[bad]}, outside the vocabulary 0..${vocabSize - 1}`);
    }
  }

  /** Waits for earlier generations of this session; returns null when the signal fires first. */
  private async acquire(signal: AbortSignal | undefined): Promise<(() => void) | null> {
    const previous = this.queueTail;
    let releaseTurn!: () => void;
    this.queueTail = new Promise<void>((resolve) => (releaseTurn = resolve));

    if (signal && !signal.aborted) {
      let onAbort!: () => void;
      const aborted = new Promise<"aborted">((resolve) => {
        onAbort = () => resolve("aborted");
        signal.addEventListener("abort", onAbort, { once: true });
      });
      const outcome = await Promise.race([previous.then(() => "ready" as const), aborted]);
      signal.removeEventListener("abort", onAbort);
      if (outcome === "aborted") {
        void previous.then(releaseTurn);
        return null;
      }
    } else {
      await previous;
    }
    if (signal?.aborted) {
      releaseTurn();
      return null;
    }
    this.busy = true;
    return () => {
      this.busy = false;
      releaseTurn();
      if (this.disposeRequested) this.closeContext();
    };
  }

  private requireContext(release?: () => void): NativeContext {
    if (this.context === null || this.disposeRequested) {
      release?.();
      throw new DisposedError("Session");
    }
    return this.context;
  }
}

function finishRecord(
  finishReason: FinishReason,
  text: string,
  promptTokens: number,
  reusedTokens: number,
  generatedTokens: number,
  prefillMs: number,
  decodeMs: number,
  promptCacheTokens = 0,
): FinishRecord {
  return { kind: "finish", finishReason, text, promptTokens, reusedTokens, promptCacheTokens, generatedTokens, prefillMs, decodeMs };
}
