// A TokenConstraint driven by a compiled grammar. The decode loop reads the mask, samples a token
// and passes it back through accept().

import type { TokenConstraint } from "../../engine/types.js";
import { createLogger } from "../../logger.js";
import { ByteRecognizer, type GrammarRuntime } from "./recognizer.js";
import type { TokenMasker } from "./token-mask.js";
import type { Vocabulary } from "./vocabulary.js";

const log = createLogger("grammar");

/** End-of-turn tokens in order of preference: ChatML (Nesso), then Llama 3's chat and text ends. */
export const DEFAULT_END_OF_TURN_TOKENS = ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>"];

/**
 * Returns the id of the first default end-of-turn token the vocabulary has, as a list. Only one is
 * allowed, because a ChatML model such as Nesso also has Llama 3's `<|eot_id|>` in its vocabulary
 * but was trained to end turns with `<|im_end|>`.
 */
export function defaultEndOfTurnTokens(vocabulary: Vocabulary): number[] {
  for (const content of DEFAULT_END_OF_TURN_TOKENS) {
    const id = vocabulary.addedTokenId(content);
    if (id !== undefined) return [id];
  }
  return [];
}

/** The shared parts of a compiled grammar that constraints read: vocabulary, runtime and mask cache. */
export interface CompiledTokenGrammar {
  readonly vocabulary: Vocabulary;
  readonly runtime: GrammarRuntime;
  readonly masker: TokenMasker;
}

/**
 * Constrains every token from the start to the end of the output. After a token the grammar
 * rejects (a decode loop that ignored the mask), it logs a warning and stops constraining, so the
 * caller's tolerant parser and schema validation take over.
 */
export class GrammarConstraint implements TokenConstraint {
  protected readonly grammar: CompiledTokenGrammar;
  protected recognizer: ByteRecognizer;
  private failedReason: string | null = null;

  constructor(grammar: CompiledTokenGrammar, recognizer?: ByteRecognizer) {
    this.grammar = grammar;
    this.recognizer = recognizer ?? new ByteRecognizer(grammar.runtime);
  }

  /** Reason the constraint stopped constraining, or null while it is active. */
  get failure(): string | null {
    return this.failedReason;
  }

  mask(): Uint8Array | null {
    if (this.failedReason !== null) return null;
    return this.grammar.masker.mask(this.recognizer.state);
  }

  accept(tokenId: number): void {
    if (this.failedReason !== null) return;
    if (!this.advance(this.recognizer, tokenId)) {
      this.fail(`token ${tokenId} ${describeToken(this.grammar.vocabulary, tokenId)} is not allowed by the grammar here`);
    }
  }

  isComplete(): boolean {
    return this.failedReason === null && this.recognizer.isFinished();
  }

  /** Advances `recognizer` by one token; returns false (and leaves it unchanged) when it is rejected. */
  protected advance(recognizer: ByteRecognizer, tokenId: number): boolean {
    const bytes = this.grammar.vocabulary.tokenBytes(tokenId);
    return bytes === null ? recognizer.acceptToken(tokenId) : recognizer.acceptBytes(bytes);
  }

  protected fail(reason: string): void {
    this.failedReason = reason;
    log.warn(`grammar constraint turned off: ${reason}; the output is no longer constrained and must be parsed and validated`);
  }
}

export function describeToken(vocabulary: Vocabulary, tokenId: number): string {
  const bytes = vocabulary.tokenBytes(tokenId);
  if (bytes === null) return "(special)";
  return JSON.stringify(new TextDecoder().decode(bytes));
}
