// Keeps every prompt inside the context window, counted in the model's own tokens: the system
// prompt, the tool definitions, the history and the tool results, plus the tokens reserved for
// the model's output. Tools that do not fit are selected by relevance and compacted; old turns are
// dropped before the window overflows, and both are reported, never silent.

import type { ChatMessage, ChatModel, ChatToolDefinition } from "../engine/types.js";
import { NessoError } from "../errors.js";
import type { RegisteredTool } from "../host/types.js";
import { toChatToolDefinitions } from "../tool-calling/tool-definitions.js";
import { rankTools } from "./tool-selection.js";

/** Description length (characters) used when tools with full descriptions do not fit. */
const shortDescriptionChars = 160;

export interface ToolSelectionRequest {
  model: Pick<ChatModel, "countTokens" | "renderChat">;
  tools: readonly RegisteredTool[];
  /** The messages the tools' cost is measured against, usually the system prompt and the task. */
  baseMessages: ChatMessage[];
  /** The text tools are ranked against (the user's request). */
  request: string;
  maxToolTokens: number;
  /** Upper bound on the number of tools (default: no bound). */
  maxTools?: number;
  usedToolNames?: ReadonlySet<string>;
}

export interface ToolSelection {
  /** The chosen tools, in the host's order. */
  tools: RegisteredTool[];
  definitions: ChatToolDefinition[];
  /** Prompt tokens the tool definitions add (the template's tool preamble included). */
  tokens: number;
  leftOut: RegisteredTool[];
  /** True when descriptions were cut to their first sentence to make tools fit. */
  descriptionsShortened: boolean;
}

/** Measures how many prompt tokens a list of tool definitions adds to `baseMessages`. */
export function measureToolTokens(
  model: Pick<ChatModel, "countTokens" | "renderChat">,
  baseMessages: ChatMessage[],
  definitions: ChatToolDefinition[],
  /** Tokens of `baseMessages` rendered without tools, when the caller already counted them. */
  baseTokens?: number,
): number {
  if (definitions.length === 0) return 0;
  const without = baseTokens ?? model.countTokens(model.renderChat(baseMessages, { addGenerationPrompt: true }));
  const withTools = model.countTokens(model.renderChat(baseMessages, { tools: definitions, addGenerationPrompt: true }));
  return withTools - without;
}

/**
 * Chooses the tools to put in the prompt. All of them when their compacted definitions fit in
 * `maxToolTokens`; otherwise the most relevant to the request, added in rank order while the
 * measured total still fits. Descriptions are shortened when the best tool does not fit whole.
 */
export function selectToolsWithinBudget(request: ToolSelectionRequest): ToolSelection {
  const { model, tools, baseMessages, maxToolTokens } = request;
  const maxTools = request.maxTools ?? Number.POSITIVE_INFINITY;

  const baseTokens = model.countTokens(model.renderChat(baseMessages, { addGenerationPrompt: true }));
  const all = toChatToolDefinitions(tools);
  const allTokens = measureToolTokens(model, baseMessages, all, baseTokens);
  if (allTokens <= maxToolTokens && tools.length <= maxTools) {
    return { tools: [...tools], definitions: all, tokens: allTokens, leftOut: [], descriptionsShortened: false };
  }

  const ranked = rankTools(tools, request.request, { usedToolNames: request.usedToolNames }).map((entry) => entry.tool);
  const order = new Map(tools.map((tool, index) => [tool, index]));

  const measure = (candidate: RegisteredTool[], maxDescriptionChars: number | undefined) =>
    measureToolTokens(model, baseMessages, toChatToolDefinitions(candidate, { maxDescriptionChars }), baseTokens);

  // Full descriptions unless the most relevant tool does not fit with them: losing the best tool
  // to make room for less relevant ones would defeat the ranking.
  const best = ranked[0];
  const maxDescriptionChars =
    best !== undefined && measure([best], undefined) > maxToolTokens ? shortDescriptionChars : undefined;

  const chosen: RegisteredTool[] = [];
  let chosenTokens = 0;
  for (const tool of ranked) {
    if (chosen.length >= maxTools) break;
    const candidate = [...chosen, tool].sort((a, b) => order.get(a)! - order.get(b)!);
    const candidateTokens = measure(candidate, maxDescriptionChars);
    if (candidateTokens > maxToolTokens) continue;
    chosen.splice(0, chosen.length, ...candidate);
    chosenTokens = candidateTokens;
  }

  const kept = new Set(chosen);
  return {
    tools: chosen,
    definitions: toChatToolDefinitions(chosen, { maxDescriptionChars }),
    tokens: chosenTokens,
    leftOut: tools.filter((tool) => !kept.has(tool)),
    descriptionsShortened: maxDescriptionChars !== undefined,
  };
}

export interface FitRequest {
  model: Pick<ChatModel, "countTokens" | "renderChat" | "contextSize">;
  messages: ChatMessage[];
  tools: ChatToolDefinition[];
  /** Tokens kept free for the model's output. */
  reservedOutputTokens: number;
}

export interface FitResult {
  /** The messages to render: `messages` less the dropped turns, plus a note where they were. */
  messages: ChatMessage[];
  prompt: string;
  promptTokens: number;
  /** Number of messages left out. */
  droppedMessages: number;
}

/** Groups messages into turns that must be dropped together (an assistant call and its results). */
function groupTurns(messages: ChatMessage[]): ChatMessage[][] {
  const turns: ChatMessage[][] = [];
  for (const message of messages) {
    const previous = turns.at(-1);
    if (message.role === "tool" && previous !== undefined) previous.push(message);
    else turns.push([message]);
  }
  return turns;
}

function droppedNote(count: number): ChatMessage {
  return {
    role: "system",
    content: `[${count} earlier messages were removed to fit the context window. Do not repeat tool calls whose results you no longer see unless you need them.]`,
  };
}

/**
 * Drops the oldest turns until the prompt plus the reserved output fits the context window. The
 * first system message, the latest user message and the latest turn are never dropped. When they
 * alone do not fit, it throws a CONTEXT_FULL error that states the sizes involved.
 */
export function fitMessagesToContext(request: FitRequest): FitResult {
  const { model, tools, reservedOutputTokens } = request;
  const limit = model.contextSize - reservedOutputTokens;
  const render = (messages: ChatMessage[]) => model.renderChat(messages, { tools, addGenerationPrompt: true });

  let prompt = render(request.messages);
  let promptTokens = model.countTokens(prompt);
  if (promptTokens <= limit) return { messages: request.messages, prompt, promptTokens, droppedMessages: 0 };

  const turns = groupTurns(request.messages);
  const head = turns[0]?.[0]?.role === "system" ? 1 : 0;
  let lastUser = -1;
  turns.forEach((turn, index) => {
    if (turn[0].role === "user") lastUser = index;
  });
  const protectedTurns = new Set([lastUser, turns.length - 1]);
  // Turns before the latest user message go first (older conversation), then the oldest steps of this run.
  const droppable = turns.map((_, index) => index).filter((index) => index >= head && !protectedTurns.has(index));

  const dropped = new Set<number>();
  let messages = request.messages;
  for (const index of droppable) {
    dropped.add(index);
    const droppedMessages = [...dropped].reduce((sum, turn) => sum + turns[turn].length, 0);
    messages = [];
    let noteAdded = false;
    turns.forEach((turn, turnIndex) => {
      if (!dropped.has(turnIndex)) {
        messages.push(...turn);
      } else if (!noteAdded) {
        messages.push(droppedNote(droppedMessages));
        noteAdded = true;
      }
    });
    prompt = render(messages);
    promptTokens = model.countTokens(prompt);
    if (promptTokens <= limit) return { messages, prompt, promptTokens, droppedMessages };
  }

  const toolTokens = tools.length === 0 ? 0 : measureToolTokens(model, request.messages.slice(0, 1), tools);
  throw new NessoError(
    "CONTEXT_FULL",
    `The prompt needs ${promptTokens} tokens after dropping every older turn (tools: ${toolTokens}), ` +
      `but the context window of ${model.contextSize} tokens leaves ${limit} once ${reservedOutputTokens} are reserved for the output. ` +
      `Shorten the request or the system prompt, connect fewer tools, or lower the tool-result cap.`,
  );
}
