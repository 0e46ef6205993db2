// Grammar-constrained decoding: JSON Schema → grammar, the byte recognizer and token masks.

export { ElementKind, GrammarBuilder, GrammarBuildError, formatGrammar, grammarFromJson, grammarToJson, type GrammarIR } from "./ir.js";
export { JSON_GRAMMAR_DEFAULTS, type JsonGrammarOptions } from "./json-rules.js";
export { JsonSchemaCompiler, SchemaCompileError, type DroppedKeyword } from "./json-schema.js";
export { ByteRecognizer, GrammarRuntime, type State } from "./recognizer.js";
export { Vocabulary, type VocabularyTrie } from "./vocabulary.js";
export { TokenMasker, type TokenMaskerOptions } from "./token-mask.js";
export { GrammarConstraint, DEFAULT_END_OF_TURN_TOKENS, defaultEndOfTurnTokens } from "./constraint.js";
export {
  ToolCallGrammar,
  ToolCallConstraint,
  createToolCallConstraintFactory,
  type ToolCallConstraintRequest,
  TOOL_CALL_OPEN,
  TOOL_CALL_CLOSE,
  type ToolChoice,
  type ToolCallGrammarOptions,
  type ToolSchemaFallback,
} from "./tool-call-grammar.js";
export { JsonOutputGrammar, type JsonOutputGrammarOptions } from "./json-output-grammar.js";
