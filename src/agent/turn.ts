// Generates one assistant turn and parses it while it streams.
//
// Prose is sampled with the configured settings, but tool calls must be decoded greedily and with
// no repetition penalty (a penalty corrupts the repeated "name"/"arguments" keys). A generator's
// options cannot change mid-stream, so the turn starts with the prose settings and, as soon as the
// parser sees `<tool_call>` open, stops that generator (return() frees it) and continues greedily
// from a prompt extended by the text generated so far. The engine's prefix reuse finds that prompt
// already in the KV cache, so the switch costs no second prefill. The rest of the turn stays greedy.

import type { ChatModel, FinishReason, GenerateOptions, TokenConstraint } from "../engine/types.js";
import { NessoError, throwIfAborted } from "../errors.js";
import { TOOL_CALL_OPEN, ToolCallStreamParser, type ParsedToolCall, type ParserEvent, type ToolCallParseError } from "../tool-calling/parser.js";

/** The sampling settings a user may configure for prose. */
export type SamplingOptions = Pick<GenerateOptions, "temperature" | "topK" | "topP" | "minP" | "repeatPenalty" | "repeatLastN" | "seed">;

/** Greedy decoding with every penalty and filter off, for the inside of tool calls. */
export const toolCallSampling: SamplingOptions = { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1 };

// A turn ends at these: the model imagining a tool's response, or starting a new chat turn.
const turnStops = ["<tool_response>", "<|im_start|>", "<|im_end|>"];

export interface TurnRequest {
  model: ChatModel;
  prompt: string;
  maxTokens: number;
  sampling: SamplingOptions;
  /** Prefix of the call ids of this turn, unique within the run. */
  idPrefix: string;
  signal?: AbortSignal;
  /**
   * Builds the grammar constraint for the greedy part. It receives the text generated after the
   * last `<tool_call>` so far, because that tag and text are already in the prompt of the greedy
   * part and the constraint must start in the state that follows them.
   */
  toolCallConstraint?: (textAfterOpenTag: string) => TokenConstraint | undefined;
  onText?: (text: string) => void;
}

/** One element of a turn in output order: a call to run or a block that could not be parsed. */
export type TurnItem = { kind: "call"; call: ParsedToolCall } | { kind: "parse_error"; error: ToolCallParseError };

export interface TurnOutput {
  /** Everything the model generated. */
  raw: string;
  /** The prose outside `<tool_call>` blocks. */
  text: string;
  items: TurnItem[];
  finishReason: FinishReason;
  generatedTokens: number;
  /** Character offset in `raw` where greedy decoding took over, or null when no call opened. */
  greedyFrom: number | null;
}

/** Generates and parses one assistant turn; throws the abort reason when `signal` fires. */
export async function generateTurn(request: TurnRequest): Promise<TurnOutput> {
  const { model, prompt, signal } = request;
  const parser = new ToolCallStreamParser({ idPrefix: request.idPrefix });
  const output: TurnOutput = { raw: "", text: "", items: [], finishReason: "stop", generatedTokens: 0, greedyFrom: null };

  const handle = (events: ParserEvent[]) => {
    for (const event of events) {
      if (event.kind === "text") {
        output.text += event.text;
        request.onText?.(event.text);
      } else if (event.kind === "call") {
        output.items.push({ kind: "call", call: event.call });
      } else if (event.kind === "parse_error") {
        output.items.push({ kind: "parse_error", error: event.error });
      }
    }
  };

  const consume = async (options: GenerateOptions, switchOnToolCall: boolean): Promise<boolean> => {
    for await (const record of model.generate(prompt + output.raw, options)) {
      if (record.kind === "finish") {
        output.finishReason = record.finishReason;
        return false;
      }
      output.raw += record.text;
      output.generatedTokens += 1;
      handle(parser.push(record.text));
      // Leaving the loop calls return() on the generator, which ends the prose generation.
      if (switchOnToolCall && parser.insideToolCall) return true;
    }
    return false;
  };

  throwIfAborted(signal, "agent turn");
  const common = { stop: turnStops, signal };
  const switched = await consume({ ...request.sampling, ...common, maxTokens: request.maxTokens }, true);

  if (switched) {
    output.greedyFrom = output.raw.length;
    const remaining = request.maxTokens - output.generatedTokens;
    if (remaining <= 0) {
      output.finishReason = "length";
    } else {
      const greedy: GenerateOptions = {
        ...toolCallSampling,
        seed: request.sampling.seed,
        ...common,
        maxTokens: remaining,
        constraint: request.toolCallConstraint?.(output.raw.slice(output.raw.lastIndexOf(TOOL_CALL_OPEN) + TOOL_CALL_OPEN.length)),
      };
      await consume(greedy, false);
    }
  }

  if (output.finishReason === "abort") {
    throwIfAborted(signal, "agent turn");
    throw new NessoError("ABORTED", "the model stopped generating with finish reason \"abort\" although the agent's signal did not fire");
  }
  handle(parser.end({ truncated: output.finishReason === "length" || output.finishReason === "context_full" }));
  return output;
}
