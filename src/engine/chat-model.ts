// The ChatModel interface (used by the agent loop and the MCP server) over a Model and one Session.

import type { Model } from "./model.js";
import { systemTurnLength } from "./prompt-cache.js";
import type { Session, SessionOptions } from "./session.js";
import type { ChatMessage, ChatModel, ChatToolDefinition, GenerateOptions, GenerationRecord } from "./types.js";

/**
 * A ChatModel backed by the native engine. All calls share one session, so consecutive turns of a
 * conversation reuse the KV cache of the common prompt prefix. Constraints in
 * `GenerateOptions.constraint` mask each sampling step and are advanced with every token.
 */
export class EngineChatModel implements ChatModel, AsyncDisposable {
  readonly model: Model;
  readonly session: Session;

  constructor(model: Model, options: SessionOptions = {}) {
    this.model = model;
    this.session = model.createSession(options);
  }

  get contextSize(): number {
    return this.session.contextSize;
  }

  countTokens(text: string): number {
    return this.model.encode(text).length;
  }

  renderChat(messages: ChatMessage[], options: { tools?: ChatToolDefinition[]; addGenerationPrompt?: boolean } = {}): string {
    return this.model.applyChatTemplate(messages, options);
  }

  /**
   * Generates a continuation of the rendered prompt. With the model's prompt cache on, the first
   * system turn (system prompt and tools) is the prefix restored from and saved to disk.
   */
  generate(prompt: string, options: GenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
    if (this.model.promptCache === null) return this.session.generate(prompt, options);
    const tokens = this.model.encode(prompt);
    return this.session.generate(tokens, { ...options, cachePrefixTokens: systemTurnLength(tokens, this.model.textTokenizer) });
  }

  /** Frees the session (not the model, which the caller owns). Safe to call twice. */
  dispose(): void {
    this.session.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}
