// Public types of the engine layer, shared by the agent, the server and the CLI.

/** A chat message in the shape Hugging Face chat templates expect. */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string | null;
  /** Tool calls of an assistant turn; `arguments` is an object or its JSON text. */
  tool_calls?: ChatToolCall[];
  /** For role "tool": the name of the tool whose result this is. */
  name?: string;
  tool_call_id?: string;
}

export interface ChatToolCall {
  id?: string;
  type: "function";
  function: { name: string; arguments: Record<string, unknown> | string };
}

/** A tool as chat templates receive it (OpenAI function format). */
export interface ChatToolDefinition {
  type: "function";
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

export type FinishReason = "stop" | "length" | "abort" | "context_full";

/**
 * Restricts which tokens may come next (the grammar engine implements it). `mask()` returns one
 * byte per vocabulary id (1 = allowed) or null for "no restriction"; `accept()` advances the state.
 */
export interface TokenConstraint {
  mask(): Uint8Array | null;
  accept(tokenId: number): void;
  /** True once the constraint has reached an accepting state where it requires the turn to end. */
  isComplete(): boolean;
}

export interface GenerateOptions {
  /** Maximum tokens to generate (default 512). */
  maxTokens?: number;
  /** 0 is greedy (default 0). */
  temperature?: number;
  /** 0 turns it off (default 0). */
  topK?: number;
  /** 1 turns it off (default 1). */
  topP?: number;
  /** 0 turns it off (default 0). */
  minP?: number;
  /** 1 turns it off (default 1). */
  repeatPenalty?: number;
  /** How many recent tokens the penalty sees (default 64). */
  repeatLastN?: number;
  /** Seed of the sampler; the same seed and prompt give the same tokens (default 0). */
  seed?: number;
  /** Strings that end generation; the text up to them is kept, the stop string is not. */
  stop?: string[];
  signal?: AbortSignal;
  /** Optional per-step restriction of the next token (grammar). */
  constraint?: TokenConstraint;
}

/** One generated token. `text` is the new complete UTF-8 text it added (may be ""). */
export interface TokenRecord {
  kind: "token";
  tokenId: number;
  text: string;
}

/** The last record of every generation. */
export interface FinishRecord {
  kind: "finish";
  finishReason: FinishReason;
  /** All generated text (stop string excluded). */
  text: string;
  promptTokens: number;
  /** Prompt tokens that were already in the KV cache and not evaluated again. */
  reusedTokens: number;
  /**
   * Prompt tokens restored from the persistent prompt cache on disk, included in reusedTokens
   * (0 or absent when none were).
   */
  promptCacheTokens?: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
}

export type GenerationRecord = TokenRecord | FinishRecord;

/**
 * What the agent loop and the MCP server need from a model. The engine's Model/Session pair
 * implements it (src/engine/chat-model.ts); unit tests of the loop use a scripted stand-in.
 */
export interface ChatModel {
  readonly contextSize: number;
  countTokens(text: string): number;
  /** Renders messages (and tools) through the model's own chat template. */
  renderChat(messages: ChatMessage[], options?: { tools?: ChatToolDefinition[]; addGenerationPrompt?: boolean }): string;
  generate(prompt: string, options?: GenerateOptions): AsyncGenerator<GenerationRecord, void, undefined>;
}
