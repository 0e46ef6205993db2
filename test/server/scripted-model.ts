// A ChatModel stand-in whose text comes from a script, for tests of tool logic that a random-weight
// model cannot exercise (valid JSON, retries). Acceptance tests use the real engine instead.

import type { ChatMessage, ChatModel, GenerateOptions, GenerationRecord } from "../../src/engine/types.js";

export interface ScriptedModelOptions {
  /** Returns the reply to one prompt; `call` counts generate() calls from 0. */
  reply: (prompt: string, call: number) => string;
  /** Delay per generated token in milliseconds (default 0: one macrotask per token). */
  tokenDelayMs?: number;
  contextSize?: number;
}

export interface ScriptedModel extends ChatModel {
  /** Prompts passed to generate(), in order. */
  readonly prompts: string[];
}

/** Creates a model that emits each reply one code point per token and honours maxTokens, stop and signal. */
export function scriptedModel(options: ScriptedModelOptions): ScriptedModel {
  const prompts: string[] = [];
  return {
    prompts,
    contextSize: options.contextSize ?? 4096,
    countTokens: (text) => Math.ceil([...text].length / 4),
    renderChat(messages: ChatMessage[], renderOptions = {}) {
      const turns = messages.map((message) => `<|im_start|>${message.role}\n${message.content ?? ""}<|im_end|>\n`).join("");
      return renderOptions.addGenerationPrompt === false ? turns : `${turns}<|im_start|>assistant\n`;
    },
    async *generate(prompt: string, generateOptions: GenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
      const call = prompts.length;
      prompts.push(prompt);
      const pieces = [...options.reply(prompt, call)];
      const maxTokens = generateOptions.maxTokens ?? 512;
      const stops = generateOptions.stop ?? [];
      let text = "";
      let generated = 0;
      const finish = (finishReason: "stop" | "length" | "abort"): GenerationRecord => ({
        kind: "finish",
        finishReason,
        text,
        promptTokens: Math.ceil([...prompt].length / 4),
        reusedTokens: 0,
        generatedTokens: generated,
        prefillMs: 0,
        decodeMs: 0,
      });

      for (const piece of pieces) {
        await new Promise((resolve) => setTimeout(resolve, options.tokenDelayMs ?? 0));
        if (generateOptions.signal?.aborted) {
          yield finish("abort");
          return;
        }
        if (generated >= maxTokens) {
          yield finish("length");
          return;
        }
        generated++;
        const candidate = text + piece;
        const stop = stops.find((sequence) => candidate.includes(sequence));
        if (stop !== undefined) {
          text = candidate.slice(0, candidate.indexOf(stop));
          yield finish("stop");
          return;
        }
        text = candidate;
        yield { kind: "token", tokenId: piece.codePointAt(0) ?? 0, text: piece };
      }
      yield finish("stop");
    },
  };
}
