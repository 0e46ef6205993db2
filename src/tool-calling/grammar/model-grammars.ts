// Grammars for one loaded model: its vocabulary is read from tokenizer.json once, then tool-call
// and JSON-output constraints are built over it on demand.

import { readModelJson } from "../../engine/tokenizer.js";
import type { ChatToolDefinition, TokenConstraint } from "../../engine/types.js";
import { JsonOutputGrammar } from "./json-output-grammar.js";
import { createToolCallConstraintFactory } from "./tool-call-grammar.js";
import { Vocabulary } from "./vocabulary.js";

export interface ModelGrammars {
  readonly vocabulary: Vocabulary;
  /** The agent's hook: a constraint for a tool call whose `<tool_call>` tag is already in the prompt. */
  toolCallConstraint(request: { tools: ChatToolDefinition[]; textAfterOpenTag: string }): TokenConstraint | undefined;
  /** A constraint that makes the whole output JSON valid for `schema`, or undefined (with a warning) when the schema cannot be compiled. */
  jsonConstraint(schema: Record<string, unknown>): TokenConstraint | undefined;
}

/**
 * Reads the model's tokenizer.json into a grammar vocabulary. `vocabSize` is the embedding's row
 * count, so masks have one entry per id the engine can produce.
 */
export async function loadModelGrammars(modelDir: string, vocabSize: number): Promise<ModelGrammars> {
  const vocabulary = Vocabulary.fromTokenizerJson(await readModelJson(modelDir, "tokenizer.json"), { size: vocabSize });
  const toolCalls = createToolCallConstraintFactory({ vocabulary });
  const jsonGrammars = new Map<string, JsonOutputGrammar | null>();
  return {
    vocabulary,
    toolCallConstraint: toolCalls,
    jsonConstraint(schema) {
      const key = JSON.stringify(schema);
      let grammar = jsonGrammars.get(key);
      if (grammar === undefined) {
        grammar = JsonOutputGrammar.tryCompile(schema, { vocabulary });
        if (jsonGrammars.size >= 16) jsonGrammars.delete(jsonGrammars.keys().next().value as string);
        jsonGrammars.set(key, grammar);
      }
      return grammar?.createConstraint();
    },
  };
}
