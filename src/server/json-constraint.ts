// Grammar constraints for the `extract` tool: the whole output is one JSON value that matches the
// caller's schema, then the end of the turn.

import { readFileSync } from "node:fs";
import { join } from "node:path";

import type { TokenConstraint } from "../engine/types.js";
import { JsonOutputGrammar, Vocabulary } from "../tool-calling/grammar/index.js";

/** Compiled grammars kept for repeated schemas. */
const grammarCacheSize = 8;

/**
 * Returns a constraint builder for the model in `modelDir`. The vocabulary is read from its
 * tokenizer.json on the first call, not at load time, so servers that never extract do not pay
 * for it (2.2 s for Llama-3's 128k tokens, measured once on a 2-core x86_64 test machine).
 */
export function createJsonConstraintBuilder(modelDir: string, vocabSize: number): (schema: Record<string, unknown>) => TokenConstraint | undefined {
  let vocabulary: Vocabulary | undefined;
  const grammars = new Map<string, JsonOutputGrammar | null>();

  return (schema) => {
    vocabulary ??= Vocabulary.fromTokenizerJson(JSON.parse(readFileSync(join(modelDir, "tokenizer.json"), "utf8")), { size: vocabSize });
    const key = JSON.stringify(schema);
    let grammar = grammars.get(key);
    if (grammar === undefined) {
      // tryCompile logs why a schema cannot be compiled and returns null; extract then validates and retries.
      grammar = JsonOutputGrammar.tryCompile(schema, { vocabulary });
    } else {
      grammars.delete(key);
    }
    grammars.set(key, grammar);
    if (grammars.size > grammarCacheSize) grammars.delete(grammars.keys().next().value!);
    return grammar?.createConstraint();
  };
}
