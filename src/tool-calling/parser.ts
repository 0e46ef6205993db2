// The streaming parser for Hermes-style model output: prose, then zero or more
// `<tool_call>{"name": …, "arguments": {…}}</tool_call>` blocks.
//
// Text arrives in chunks of any size (a chunk may end inside a tag). The parser emits prose as soon
// as it cannot be the start of a tag, reports the moment a block opens (the agent switches to greedy
// decoding there), and turns every finished block into tool calls or one parse error. It never
// throws: whatever the model wrote becomes text, calls or errors the agent loop can send back.
//
// Tolerated slips in the JSON: a code fence around it or around the whole block, `parameters` (or
// `args`) in place of `arguments`, arguments written as a JSON string, the OpenAI
// `{"function": {…}}` wrapper, arguments beside `name` with no `arguments` key, and trailing commas
// with the other slips that lenient-json.ts accepts. Tolerated slips in the blocks: several calls in
// one block (a JSON array or values one after another), a `<tool_call>` that opens before the
// previous one closed, and a closing tag missing at the end.

import { parseLenientJson } from "./lenient-json.js";

export const TOOL_CALL_OPEN = "<tool_call>";
export const TOOL_CALL_CLOSE = "</tool_call>";

/** One tool call as the model wrote it, with arguments normalised to an object. */
export interface ParsedToolCall {
  /** Unique within one parser: `${idPrefix}${n}`. */
  id: string;
  name: string;
  arguments: Record<string, unknown>;
  /** The text of the block the call came from (several calls may share one block). */
  raw: string;
}

/** A `<tool_call>` block that did not yield a usable call. */
export interface ToolCallParseError {
  id: string;
  /** Explanation of the problem and of how the model should write the call instead. */
  message: string;
  raw: string;
}

export type ParserEvent =
  | { kind: "text"; text: string }
  | { kind: "call_open" }
  | { kind: "call"; call: ParsedToolCall }
  | { kind: "parse_error"; error: ToolCallParseError };

export interface ToolCallParserOptions {
  /** Prefix of the generated call ids (default "call_"). */
  idPrefix?: string;
}

export interface ParserEndOptions {
  /**
   * The generation stopped early (token limit or full context). A block still open then is
   * reported as cut off instead of being read as if its closing tag were merely missing.
   */
  truncated?: boolean;
}

const callFormatHint = `Write each call as <tool_call>{"name": "<tool name>", "arguments": {<arguments>}}</tool_call>.`;

// A fence opener such as "```json\n" right before <tool_call> belongs to the block, not to the prose.
const trailingFenceOpener = /```[A-Za-z0-9_-]*[ \t]*\r?\n?[ \t]*$/;
// The same, or its first backticks, at the end of a chunk. It is held back until the next chunk decides.
const trailingPartialFence = /(?:```[A-Za-z0-9_-]*[ \t]*\r?\n?[ \t]*|`{1,2})$/;

/** Returns the length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTagLength(text: string, tag: string): number {
  const max = Math.min(text.length, tag.length - 1);
  for (let length = max; length > 0; length--) {
    if (text.endsWith(tag.slice(0, length))) return length;
  }
  return 0;
}

/** String-literal state of the scan over an open block, carried across chunks. */
interface QuoteState {
  /** The quote character of the string being scanned, or null outside strings. */
  quote: string | null;
  escaped: boolean;
  /** Index up to which the buffer has been scanned. */
  scanned: number;
}

export class ToolCallStreamParser {
  private readonly idPrefix: string;
  private nextId = 1;

  private mode: "text" | "call" = "text";
  private buffer = "";
  /** The block opened inside a code fence, so a closing fence after it is dropped too. */
  private fenced = false;
  private dropClosingFence = false;
  private quoteState: QuoteState = { quote: null, escaped: false, scanned: 0 };
  private ended = false;

  constructor(options: ToolCallParserOptions = {}) {
    this.idPrefix = options.idPrefix ?? "call_";
  }

  /** True between a `<tool_call>` and the end of its block. */
  get insideToolCall(): boolean {
    return this.mode === "call";
  }

  /** Feeds the next chunk of output and returns the events it completes. */
  push(chunk: string): ParserEvent[] {
    const events: ParserEvent[] = [];
    if (this.ended || chunk === "") return events;
    this.buffer += chunk;
    try {
      this.drain(events, false);
    } catch (error) {
      // Only a bug can land here; the parser still must not take the agent loop down with it.
      events.push(this.internalError(error));
    }
    return events;
  }

  /** Flushes what is left at the end of the output. Later pushes are ignored. */
  end(options: ParserEndOptions = {}): ParserEvent[] {
    const events: ParserEvent[] = [];
    if (this.ended) return events;
    this.ended = true;
    try {
      this.drain(events, true);
      if (this.mode === "call") this.finishUnclosedBlock(events, options.truncated ?? false);
      else this.flushText(events, this.buffer);
      this.buffer = "";
    } catch (error) {
      events.push(this.internalError(error));
    }
    return events;
  }

  private drain(events: ParserEvent[], atEnd: boolean): void {
    for (;;) {
      const progressed = this.mode === "text" ? this.drainText(events, atEnd) : this.drainCall(events);
      if (!progressed) return;
    }
  }

  /** Emits prose up to the next `<tool_call>`; returns true when a block opened. */
  private drainText(events: ParserEvent[], atEnd: boolean): boolean {
    if (this.dropClosingFence) {
      const fence = /^\s*```/.exec(this.buffer);
      if (fence) {
        this.buffer = this.buffer.slice(fence[0].length);
        this.dropClosingFence = false;
      } else if (!atEnd && /^\s*`{0,2}$/.test(this.buffer)) {
        return false; // the next chunk decides whether a closing fence follows
      } else {
        this.dropClosingFence = false;
      }
    }

    const open = this.buffer.indexOf(TOOL_CALL_OPEN);
    if (open === -1) {
      if (atEnd) return false;
      let keep = partialTagLength(this.buffer, TOOL_CALL_OPEN);
      const fence = trailingPartialFence.exec(this.buffer.slice(0, this.buffer.length - keep));
      if (fence) keep += fence[0].length;
      this.flushText(events, this.buffer.slice(0, this.buffer.length - keep));
      this.buffer = this.buffer.slice(this.buffer.length - keep);
      return false;
    }

    let prose = this.buffer.slice(0, open);
    const fence = trailingFenceOpener.exec(prose);
    this.fenced = fence !== null;
    if (fence) prose = prose.slice(0, fence.index);
    this.flushText(events, prose);

    this.buffer = this.buffer.slice(open + TOOL_CALL_OPEN.length);
    this.mode = "call";
    this.quoteState = { quote: null, escaped: false, scanned: 0 };
    events.push({ kind: "call_open" });
    return true;
  }

  /** Closes the block at `</tool_call>` (or at a new `<tool_call>`); returns true when it closed. */
  private drainCall(events: ParserEvent[]): boolean {
    const boundary = this.findBlockBoundary();
    if (boundary === null) return false;

    const block = this.buffer.slice(0, boundary.index);
    this.emitBlock(events, block);
    this.buffer = this.buffer.slice(boundary.index + (boundary.tag === TOOL_CALL_CLOSE ? TOOL_CALL_CLOSE.length : 0));
    this.mode = "text";
    this.dropClosingFence = this.fenced;
    this.fenced = false;
    return true;
  }

  /**
   * Finds the first closing tag, or a new opening tag, that lies outside JSON strings, so a tag
   * inside an argument value (say, a file that documents this protocol) does not end the block.
   */
  private findBlockBoundary(): { index: number; tag: string } | null {
    const state = this.quoteState;
    const text = this.buffer;
    for (let i = state.scanned; i < text.length; i++) {
      const char = text[i];
      if (state.quote !== null) {
        if (state.escaped) state.escaped = false;
        else if (char === "\\") state.escaped = true;
        else if (char === state.quote) state.quote = null;
        continue;
      }
      if (char === '"' || char === "'") {
        if (char === "'" && i + 1 === text.length) {
          state.scanned = i; // the next character decides whether this apostrophe opens a string
          return null;
        }
        // An apostrophe between two letters is prose (a slip outside any string), not a quote.
        if (char === "'" && /\p{L}/u.test(text[i - 1] ?? "") && /\p{L}/u.test(text[i + 1])) continue;
        state.quote = char;
        continue;
      }
      if (char !== "<") continue;

      const rest = text.slice(i);
      for (const tag of [TOOL_CALL_CLOSE, TOOL_CALL_OPEN]) {
        if (rest.startsWith(tag)) return { index: i, tag };
      }
      if (TOOL_CALL_CLOSE.startsWith(rest) || TOOL_CALL_OPEN.startsWith(rest)) {
        state.scanned = i; // a tag may be arriving; rescan from here when the next chunk comes
        return null;
      }
    }
    state.scanned = text.length;
    return null;
  }

  /** Handles a block with no closing tag when the output ends. */
  private finishUnclosedBlock(events: ParserEvent[], truncated: boolean): void {
    let block = this.buffer;
    let rest = "";
    // A closing tag the string-aware scan skipped means a quote was left open: split at the raw tag.
    const rawClose = block.indexOf(TOOL_CALL_CLOSE);
    if (rawClose !== -1) {
      rest = block.slice(rawClose + TOOL_CALL_CLOSE.length);
      block = block.slice(0, rawClose);
    }

    // A block whose JSON is complete lost only its closing tag to the limit; anything else was cut off.
    const complete = parseLenientJson(stripCodeFence(block.trim()), { closeUnterminated: false }).ok;
    if (truncated && rawClose === -1 && !complete) {
      events.push({
        kind: "parse_error",
        error: {
          id: this.takeId(),
          message: `The output stopped inside a <tool_call> block because the output token limit was reached, so the call was not run. ${callFormatHint} Keep the arguments short.`,
          raw: block,
        },
      });
    } else {
      this.emitBlock(events, block, true);
    }

    this.mode = "text";
    this.buffer = rest;
    if (this.fenced) this.dropClosingFence = true;
    this.fenced = false;
    if (rest !== "") {
      // Whatever followed the unbalanced block is parsed again from the top, tags included.
      this.drain(events, true);
      if (this.insideToolCall) this.finishUnclosedBlock(events, truncated);
      else this.flushText(events, this.buffer);
    }
    this.buffer = "";
  }

  private emitBlock(events: ParserEvent[], raw: string, unclosed = false): void {
    for (const item of parseToolCallBlock(raw, unclosed)) {
      if ("message" in item) {
        events.push({ kind: "parse_error", error: { id: this.takeId(), message: item.message, raw } });
      } else {
        events.push({ kind: "call", call: { id: this.takeId(), name: item.name, arguments: item.arguments, raw } });
      }
    }
  }

  private flushText(events: ParserEvent[], text: string): void {
    if (text === "") return;
    const last = events.at(-1);
    if (last?.kind === "text") last.text += text;
    else events.push({ kind: "text", text });
  }

  private takeId(): string {
    const id = `${this.idPrefix}${this.nextId}`;
    this.nextId += 1;
    return id;
  }

  private internalError(error: unknown): ParserEvent {
    this.mode = "text";
    this.buffer = "";
    return {
      kind: "parse_error",
      error: { id: this.takeId(), message: `internal parser error: ${(error as Error)?.message ?? String(error)}`, raw: "" },
    };
  }
}

type BlockItem = { name: string; arguments: Record<string, unknown> } | { message: string };

/**
 * Reads the text between `<tool_call>` and `</tool_call>` into calls. Each element is a call or a
 * message explaining why that part is unusable. Exported for tests and for callers that already
 * hold a complete block.
 */
export function parseToolCallBlock(raw: string, unclosed = false): BlockItem[] {
  const text = stripCodeFence(raw.trim());
  if (text === "") return [{ message: `The <tool_call> block is empty. ${callFormatHint}` }];

  // Small models often drop the last "}", so brackets still open at the end are closed.
  const parsed = parseLenientJson(text, { closeUnterminated: true });
  if (!parsed.ok) {
    const where = unclosed ? " (the block has no closing </tool_call> tag)" : "";
    return [{ message: `The <tool_call> block is not valid JSON${where}: ${parsed.message}. ${callFormatHint}` }];
  }

  const items: BlockItem[] = [];
  for (const value of parsed.values) {
    if (Array.isArray(value)) {
      if (value.length === 0) items.push({ message: `The <tool_call> block contains an empty array. ${callFormatHint}` });
      for (const element of value) items.push(normaliseCall(element));
    } else {
      items.push(normaliseCall(value));
    }
  }
  return items;
}

function stripCodeFence(text: string): string {
  const fenced = /^```[A-Za-z0-9_-]*[ \t]*\r?\n?([\s\S]*?)\r?\n?[ \t]*(```)?$/.exec(text);
  return fenced ? fenced[1].trim() : text;
}

const callKeys = new Set(["name", "type", "id", "arguments", "parameters", "args"]);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Turns one parsed JSON value into a call, accepting the common variations of the Hermes shape. */
function normaliseCall(value: unknown): BlockItem {
  if (!isPlainObject(value)) {
    return { message: `Each tool call must be a JSON object, but the block contains ${describeJson(value)}. ${callFormatHint}` };
  }

  // OpenAI shape: {"type": "function", "function": {"name": …, "arguments": …}}
  const call = isPlainObject(value.function) ? value.function : value;
  const name = typeof call.name === "string" ? call.name.trim() : "";
  if (name === "") {
    return { message: `The tool call has no "name" string. ${callFormatHint}` };
  }

  let args: unknown = call.arguments ?? call.parameters ?? call.args;
  if (args === undefined) {
    // {"name": "read_text_file", "path": "a.txt"}: the arguments sit beside the name.
    args = Object.fromEntries(Object.entries(call).filter(([key]) => !callKeys.has(key) && key !== "function"));
  }
  if (args === null) args = {};
  if (typeof args === "string") {
    if (args.trim() === "") {
      args = {};
    } else {
      const inner = parseLenientJson(args, { closeUnterminated: true });
      if (!inner.ok || inner.values.length !== 1) {
        const reason = inner.ok ? "it holds several values" : inner.message;
        return { message: `The "arguments" of ${name} are a string that is not one JSON object (${reason}). Pass "arguments" as a JSON object.` };
      }
      args = inner.values[0];
    }
  }
  if (!isPlainObject(args)) {
    return { message: `The "arguments" of ${name} must be a JSON object, but they are ${describeJson(args)}. ${callFormatHint}` };
  }
  return { name, arguments: args };
}

function describeJson(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return `a ${typeof value}`;
}

/** Everything one complete output holds, for callers that do not stream. */
export interface ParsedOutput {
  /** The prose outside the blocks, concatenated. */
  text: string;
  calls: ParsedToolCall[];
  errors: ToolCallParseError[];
}

/** Parses a complete output at once (the same result as streaming it through a parser). */
export function parseToolCallOutput(output: string, options: ToolCallParserOptions & ParserEndOptions = {}): ParsedOutput {
  const parser = new ToolCallStreamParser(options);
  return collectParserEvents([...parser.push(output), ...parser.end(options)]);
}

/** Folds parser events into text, calls and errors. */
export function collectParserEvents(events: ParserEvent[]): ParsedOutput {
  const result: ParsedOutput = { text: "", calls: [], errors: [] };
  for (const event of events) {
    if (event.kind === "text") result.text += event.text;
    else if (event.kind === "call") result.calls.push(event.call);
    else if (event.kind === "parse_error") result.errors.push(event.error);
  }
  return result;
}
