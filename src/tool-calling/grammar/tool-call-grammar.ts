// The grammar of Hermes-style tool calls, as Nesso's chat template writes them:
//
//   <tool_call>
//   {"name": "read_file", "arguments": {"path": "notes.txt"}}
//   </tool_call>
//
// The name is one of the offered tools and the arguments follow that tool's inputSchema. After a
// call comes another call or the end of the turn. `<tool_call>` and `</tool_call>` are single
// tokens when the tokenizer has them as added tokens (Nesso does), and byte sequences otherwise.

import type { ChatToolDefinition, TokenConstraint } from "../../engine/types.js";
import { NessoError } from "../../errors.js";
import { createLogger } from "../../logger.js";
import { GrammarConstraint, defaultEndOfTurnTokens, type CompiledTokenGrammar } from "./constraint.js";
import { GrammarBuilder, literal, ref, token, type Element } from "./ir.js";
import type { JsonGrammarOptions } from "./json-rules.js";
import { JsonSchemaCompiler, type DroppedKeyword } from "./json-schema.js";
import { ByteRecognizer, GrammarRuntime } from "./recognizer.js";
import { TokenMasker, type TokenMaskerOptions } from "./token-mask.js";
import type { Vocabulary } from "./vocabulary.js";

const log = createLogger("grammar");

export const TOOL_CALL_OPEN = "<tool_call>";
export const TOOL_CALL_CLOSE = "</tool_call>";

/**
 * Tool-call mode. `auto` leaves text free until the model opens `<tool_call>`, `required` makes
 * the turn start with a call, and `none` constrains nothing.
 */
export type ToolChoice = "auto" | "required" | "none";

export interface ToolCallGrammarOptions extends JsonGrammarOptions, TokenMaskerOptions {
  tools: ReadonlyArray<{ name: string; inputSchema: unknown }>;
  vocabulary: Vocabulary;
  /** Tokens that may end the turn after the last call (default: the first of `<|im_end|>`, `<|eot_id|>`, `<|end_of_text|>` that the vocabulary has). */
  endOfTurnTokens?: number[];
  /** Maximum calls in one turn (default 8). */
  maxCalls?: number;
}

/** A tool whose inputSchema could not be compiled; its arguments are constrained to any JSON object. */
export interface ToolSchemaFallback {
  name: string;
  error: string;
}

/**
 * The compiled grammar for one set of tools. Compile it once per tool set and create one
 * constraint per generation; the constraints share the grammar's state tables and mask cache.
 */
export class ToolCallGrammar implements CompiledTokenGrammar {
  readonly vocabulary: Vocabulary;
  readonly runtime: GrammarRuntime;
  readonly masker: TokenMasker;
  /** Keywords dropped while compiling the schemas, with their paths prefixed by the tool name. */
  readonly dropped: DroppedKeyword[];
  readonly fallbacks: ToolSchemaFallback[];
  private readonly openToken: number | undefined;
  private readonly openBytes: Uint8Array;

  private constructor(options: ToolCallGrammarOptions) {
    if (options.tools.length === 0) {
      throw new NessoError("INVALID_ARGUMENT", "tool-call grammar: the tool list is empty; offer at least one tool or use tool choice \"none\"");
    }
    this.vocabulary = options.vocabulary;
    this.openToken = options.vocabulary.addedTokenId(TOOL_CALL_OPEN);
    this.openBytes = new TextEncoder().encode(TOOL_CALL_OPEN);
    const builder = new GrammarBuilder();
    const compiler = new JsonSchemaCompiler(builder, options);
    const rules = compiler.rules;
    this.fallbacks = [];

    const tag = (content: string): Element[] => {
      const id = options.vocabulary.addedTokenId(content);
      return id === undefined ? literal(content) : [token(id)];
    };
    const seen = new Set<string>();
    const compiled: Array<{ name: string; args: number }> = [];
    const fallBack = (name: string, error: NessoError): number => {
      log.warn(`tool "${name}": inputSchema cannot be compiled to a grammar (${error.message}); its arguments are constrained to any JSON object and must be validated`);
      this.fallbacks.push({ name, error: error.message });
      return rules.anyObject();
    };
    for (const tool of options.tools) {
      if (seen.has(tool.name)) throw new NessoError("INVALID_ARGUMENT", `tool-call grammar: tool name "${tool.name}" appears twice`);
      seen.add(tool.name);
      try {
        compiled.push({ name: tool.name, args: compiler.compile(tool.inputSchema, tool.inputSchema, "#") });
      } catch (error) {
        if (!(error instanceof NessoError)) throw error;
        compiled.push({ name: tool.name, args: fallBack(tool.name, error) });
      }
    }
    // Left recursion and unsatisfiable schemas show up only when rules are validated. Checking
    // all tools at once is cheap. Only when that fails is each tool checked on its own, so that
    // a broken schema falls back alone instead of failing the whole grammar.
    try {
      builder.validate(builder.add("all-arguments", [compiled.map(({ args }) => ref(args))]));
    } catch (error) {
      if (!(error instanceof NessoError)) throw error;
      for (const entry of compiled) {
        try {
          builder.validate(entry.args);
        } catch (toolError) {
          if (!(toolError instanceof NessoError)) throw toolError;
          entry.args = fallBack(entry.name, toolError);
        }
      }
    }
    const bodies: Element[][] = compiled.map(({ name, args }) => [
      ...literal(JSON.stringify(name)),
      rules.ws(),
      ...literal(","),
      rules.ws(),
      ...literal('"arguments"'),
      rules.ws(),
      ...literal(":"),
      rules.ws(),
      ref(args),
    ]);
    this.dropped = compiler.dropped;

    const ws = () => rules.ws();
    const body = builder.add("tool-call-body", bodies);
    const call = builder.add("tool-call", [
      [ws(), ...literal("{"), ws(), ...literal('"name"'), ws(), ...literal(":"), ws(), ref(body), ws(), ...literal("}"), ws()],
    ]);
    const more = builder.add("tool-call-more", [[...tag(TOOL_CALL_OPEN), ref(call), ...tag(TOOL_CALL_CLOSE), ws()]]);
    const endTokens = options.endOfTurnTokens ?? defaultEndOfTurnTokens(options.vocabulary);
    const end = builder.add("end-of-turn", endTokens.length > 0 ? endTokens.map((id) => [token(id)]) : [[]]);
    const maxCalls = options.maxCalls ?? 8;
    const root = builder.add("tool-calls", [
      [ws(), ...tag(TOOL_CALL_OPEN), ref(call), ...tag(TOOL_CALL_CLOSE), ws(), ref(more, 0, maxCalls - 1), ref(end)],
    ]);
    this.runtime = new GrammarRuntime(builder.build(root));
    this.masker = new TokenMasker(options.vocabulary, this.runtime, options);
  }

  /**
   * Compiles the grammar. A tool whose schema cannot be compiled is logged as a warning and gets
   * "any JSON object" as its arguments grammar; see `fallbacks`.
   */
  static compile(options: ToolCallGrammarOptions): ToolCallGrammar {
    return new ToolCallGrammar(options);
  }

  /** Creates the per-generation constraint for the given tool choice. */
  createConstraint(choice: ToolChoice): ToolCallConstraint {
    return new ToolCallConstraint(this, choice);
  }

  /**
   * Creates an active constraint for a generation whose prompt already ends with `<tool_call>`
   * and `textAfterOpenTag` (the agent re-prompts greedily once a call opened). When the grammar
   * rejects that text, the constraint logs a warning and constrains nothing.
   */
  createConstraintAfterOpenTag(textAfterOpenTag: string): ToolCallConstraint {
    const constraint = new ToolCallConstraint(this, "required");
    constraint.startAfterOpenTag(new TextEncoder().encode(textAfterOpenTag));
    return constraint;
  }

  /** Returns a recognizer positioned right after `<tool_call>`, where `auto` mode starts constraining. */
  recognizerAfterOpen(): ByteRecognizer {
    const recognizer = new ByteRecognizer(this.runtime);
    const accepted = this.openToken !== undefined ? recognizer.acceptToken(this.openToken) : recognizer.acceptBytes(this.openBytes);
    if (!accepted) throw new NessoError("INTERNAL", "tool-call grammar does not accept its own opening tag");
    return recognizer;
  }

  /** The id of the `<tool_call>` token, or undefined when the tag is spelled with ordinary tokens. */
  get openTokenId(): number | undefined {
    return this.openToken;
  }

  get openTagBytes(): Uint8Array {
    return this.openBytes;
  }
}

/** The TokenConstraint of one generation with tools. */
export class ToolCallConstraint extends GrammarConstraint implements TokenConstraint {
  readonly choice: ToolChoice;
  private readonly toolGrammar: ToolCallGrammar;
  private active: boolean;
  /** Bytes of free text kept to find an opening tag split across tokens (byte form only). */
  private pending = new Uint8Array(0);

  constructor(grammar: ToolCallGrammar, choice: ToolChoice) {
    super(grammar);
    this.toolGrammar = grammar;
    this.choice = choice;
    this.active = choice === "required";
  }

  /** True once the grammar constrains the output (always in `required`, after `<tool_call>` in `auto`). */
  get isActive(): boolean {
    return this.active;
  }

  override mask(): Uint8Array | null {
    if (!this.active) return null;
    return super.mask();
  }

  override accept(tokenId: number): void {
    if (this.choice === "none") return;
    if (this.active) {
      super.accept(tokenId);
      return;
    }
    this.watchFreeText(tokenId);
  }

  override isComplete(): boolean {
    return this.active && super.isComplete();
  }

  /** In `auto` mode, activates the grammar when the free text opens a tool call. */
  private watchFreeText(tokenId: number): void {
    const openToken = this.toolGrammar.openTokenId;
    if (openToken !== undefined) {
      if (tokenId === openToken) this.activate(new Uint8Array(0));
      return;
    }
    const bytes = this.grammar.vocabulary.tokenBytes(tokenId);
    if (bytes === null) return;
    const open = this.toolGrammar.openTagBytes;
    const text = new Uint8Array(this.pending.length + bytes.length);
    text.set(this.pending);
    text.set(bytes, this.pending.length);
    const at = indexOf(text, open);
    if (at >= 0) {
      this.activate(text.subarray(at + open.length));
      return;
    }
    this.pending = text.slice(Math.max(0, text.length - (open.length - 1)));
  }

  /** Starts constraining right after the opening tag, then feeds the bytes that followed it. */
  startAfterOpenTag(rest: Uint8Array): void {
    this.activate(rest);
  }

  private activate(rest: Uint8Array): void {
    this.active = true;
    this.recognizer = this.toolGrammar.recognizerAfterOpen();
    if (rest.length > 0 && !this.recognizer.acceptBytes(rest)) {
      this.fail(`the text right after ${JSON.stringify(TOOL_CALL_OPEN)}, ${JSON.stringify(new TextDecoder().decode(rest))}, cannot start a tool call`);
    }
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}



/** Request of the agent loop for a constraint on the greedy part of a tool call. */
export interface ToolCallConstraintRequest {
  tools: ReadonlyArray<ChatToolDefinition>;
  textAfterOpenTag: string;
}

/**
 * Returns a function that builds constraints for the agent loop, compiling each distinct tool set
 * once and keeping the last `cacheSize` grammars (default 4) with their mask caches. When no
 * grammar can be built (no tools, duplicate names), it logs a warning and returns undefined, and
 * the caller parses and validates the call without a grammar.
 */
export function createToolCallConstraintFactory(
  options: Omit<ToolCallGrammarOptions, "tools"> & { cacheSize?: number },
): (request: ToolCallConstraintRequest) => ToolCallConstraint | undefined {
  const grammars = new Map<string, ToolCallGrammar>();
  const cacheSize = options.cacheSize ?? 4;
  return ({ tools, textAfterOpenTag }) => {
    const key = JSON.stringify(tools.map((tool) => [tool.function.name, tool.function.parameters]));
    let grammar = grammars.get(key);
    if (grammar) {
      grammars.delete(key);
    } else {
      try {
        grammar = ToolCallGrammar.compile({
          ...options,
          tools: tools.map((tool) => ({ name: tool.function.name, inputSchema: tool.function.parameters })),
        });
      } catch (error) {
        if (!(error instanceof NessoError)) throw error;
        log.warn(`no tool-call grammar for this turn (${error.message}); the call is parsed and validated without one`);
        return undefined;
      }
    }
    grammars.set(key, grammar);
    if (grammars.size > cacheSize) grammars.delete(grammars.keys().next().value!);
    return grammar.createConstraintAfterOpenTag(textAfterOpenTag);
  };
}
