// The ChatModel interface (used by the agent loop and the MCP server) over a Model and one Session.

import type { Model } from "./model.js";
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

  generate(prompt: string, options: GenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
    return this.session.generate(prompt, options);
  }

  /** Frees the session (not the model, which the caller owns). Safe to call twice. */
  dispose(): void {
    this.session.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}
