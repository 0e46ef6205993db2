// Whole-output JSON mode: the entire generation is one JSON value that matches a schema, followed by
// the end of the turn. Used by structured extraction and any caller that asks for schema-shaped JSON.

import { NessoError } from "../../errors.js";
import { createLogger } from "../../logger.js";
import { GrammarConstraint, defaultEndOfTurnTokens, type CompiledTokenGrammar } from "./constraint.js";
import { GrammarBuilder, ref, token } from "./ir.js";
import type { JsonGrammarOptions } from "./json-rules.js";
import { JsonSchemaCompiler, type DroppedKeyword } from "./json-schema.js";
import { GrammarRuntime } from "./recognizer.js";
import { TokenMasker, type TokenMaskerOptions } from "./token-mask.js";
import type { Vocabulary } from "./vocabulary.js";

const log = createLogger("grammar");

export interface JsonOutputGrammarOptions extends JsonGrammarOptions, TokenMaskerOptions {
  vocabulary: Vocabulary;
  /** Tokens that may end the turn after the value (default: the first of `<|im_end|>`, `<|eot_id|>`, `<|end_of_text|>` that the vocabulary has). */
  endOfTurnTokens?: number[];
}

export class JsonOutputGrammar implements CompiledTokenGrammar {
  readonly vocabulary: Vocabulary;
  readonly runtime: GrammarRuntime;
  readonly masker: TokenMasker;
  readonly dropped: DroppedKeyword[];

  private constructor(schema: unknown, options: JsonOutputGrammarOptions) {
    this.vocabulary = options.vocabulary;
    const builder = new GrammarBuilder();
    const compiler = new JsonSchemaCompiler(builder, options);
    const value = compiler.compile(schema);
    this.dropped = compiler.dropped;
    const ws = compiler.rules.ws();
    const endTokens = options.endOfTurnTokens ?? defaultEndOfTurnTokens(options.vocabulary);
    const end = builder.add("end-of-turn", endTokens.length > 0 ? endTokens.map((id) => [token(id)]) : [[]]);
    const root = builder.add("output", [[ws, ref(value), ws, ref(end)]]);
    this.runtime = new GrammarRuntime(builder.build(root));
    this.masker = new TokenMasker(options.vocabulary, this.runtime, options);
  }

  /** Compiles the grammar; raises SchemaCompileError or GrammarBuildError when the schema cannot be compiled. */
  static compile(schema: unknown, options: JsonOutputGrammarOptions): JsonOutputGrammar {
    return new JsonOutputGrammar(schema, options);
  }

  /**
   * Compiles the grammar, or logs a warning and returns null when the schema cannot be compiled,
   * in which case the caller generates without a grammar and parses and validates the output.
   */
  static tryCompile(schema: unknown, options: JsonOutputGrammarOptions): JsonOutputGrammar | null {
    try {
      return new JsonOutputGrammar(schema, options);
    } catch (error) {
      if (!(error instanceof NessoError)) throw error;
      log.warn(`JSON output schema cannot be compiled to a grammar (${error.message}); generating without a grammar, the output must be parsed and validated`);
      return null;
    }
  }

  createConstraint(): GrammarConstraint {
    return new GrammarConstraint(this);
  }
}
