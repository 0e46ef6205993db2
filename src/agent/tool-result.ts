// Turns an MCP tool result into the text of a `tool` message and caps it to a token budget by
// keeping its head and tail around a marker, so one large file cannot fill the context window.

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** A tool result as text, and whether the cap removed part of it. */
export interface CappedText {
  text: string;
  /** Tokens of `text`. */
  tokens: number;
  truncated: boolean;
  /** Characters removed from the middle (0 when not truncated). */
  cutCharacters: number;
}

/** Share of the kept budget that goes to the head; the rest keeps the tail, where errors often are. */
const headShare = 2 / 3;

/** Bytes encoded by a base64 string (padding excluded). */
function base64ByteLength(data: string): number {
  const clean = data.replace(/\s/g, "");
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

/**
 * Writes every content part of a result as text: text parts as they are, images and audio as
 * `[image: image/png, 1234 bytes]`, embedded resources with their URI (and their text when they
 * have any), resource links as their URI. `structuredContent` is written as JSON only when there
 * is no text part, because MCP asks servers to repeat it as text and the copy would cost tokens twice.
 */
export function toolResultToText(result: CallToolResult): string {
  const parts: string[] = [];
  let hasText = false;

  for (const part of result.content ?? []) {
    switch (part.type) {
      case "text":
        hasText = true;
        parts.push(part.text);
        break;
      case "image":
      case "audio":
        parts.push(`[${part.type}: ${part.mimeType}, ${base64ByteLength(part.data)} bytes]`);
        break;
      case "resource": {
        const resource = part.resource;
        const mimeType = resource.mimeType === undefined ? "" : `, ${resource.mimeType}`;
        if ("text" in resource && typeof resource.text === "string") {
          hasText = true;
          parts.push(`[resource: ${resource.uri}${mimeType}]\n${resource.text}`);
        } else if ("blob" in resource && typeof resource.blob === "string") {
          parts.push(`[resource: ${resource.uri}${mimeType}, ${base64ByteLength(resource.blob)} bytes]`);
        } else {
          parts.push(`[resource: ${resource.uri}${mimeType}]`);
        }
        break;
      }
      case "resource_link": {
        const name = part.name === undefined || part.name === part.uri ? "" : ` (${part.name})`;
        parts.push(`[resource link: ${part.uri}${name}]`);
        break;
      }
      default:
        parts.push(`[${(part as { type: string }).type} content]`);
    }
  }

  if (!hasText && result.structuredContent !== undefined) {
    parts.unshift(JSON.stringify(result.structuredContent));
  }
  if (parts.length === 0) return "(the tool returned no content)";
  return parts.join("\n");
}

/** Moves `index` off the low half of a surrogate pair, so a cut never splits a character. */
function codePointBoundary(text: string, index: number, direction: -1 | 1): number {
  const code = text.charCodeAt(index);
  if (index > 0 && index < text.length && code >= 0xdc00 && code <= 0xdfff) return index + direction;
  return index;
}

/** Returns the largest prefix length of `text` whose tokens fit in `budget`. */
function fittingPrefixLength(text: string, budget: number, countTokens: (text: string) => number): number {
  if (budget <= 0) return 0;
  // One token spans at most a few dozen characters, so the search never needs to look further.
  let low = 0;
  let high = Math.min(text.length, budget * 32);
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (countTokens(text.slice(0, middle)) <= budget) low = middle;
    else high = middle - 1;
  }
  return codePointBoundary(text, low, -1);
}

/** Returns the largest suffix length of `text` whose tokens fit in `budget`. */
function fittingSuffixLength(text: string, budget: number, countTokens: (text: string) => number): number {
  if (budget <= 0) return 0;
  let low = 0;
  let high = Math.min(text.length, budget * 32);
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (countTokens(text.slice(text.length - middle)) <= budget) low = middle;
    else high = middle - 1;
  }
  return text.length - codePointBoundary(text, text.length - low, 1);
}

/** Moves a cut back to the last line break within the final fifth of the kept part, if there is one. */
function preferLineBreak(head: string): string {
  const lineBreak = head.lastIndexOf("\n");
  return lineBreak >= head.length * 0.8 ? head.slice(0, lineBreak + 1) : head;
}

function cutMarker(cutCharacters: number, cutTokens: number, totalCharacters: number): string {
  return `\n[… ${cutCharacters} of ${totalCharacters} characters (about ${cutTokens} tokens) were cut from the middle of this result …]\n`;
}

/**
 * Caps `text` at `maxTokens` tokens by keeping its head and tail around a marker that states how
 * much was cut. Text within the cap is returned unchanged.
 */
export function capText(text: string, maxTokens: number, countTokens: (text: string) => number): CappedText {
  const tokens = countTokens(text);
  if (tokens <= maxTokens) return { text, tokens, truncated: false, cutCharacters: 0 };

  // The marker's own size depends on the numbers in it; the widest possible numbers bound it.
  const markerTokens = countTokens(cutMarker(text.length, tokens, text.length));
  const keptBudget = Math.max(0, maxTokens - markerTokens);
  let headBudget = Math.floor(keptBudget * headShare);
  let tailBudget = keptBudget - headBudget;

  for (;;) {
    const head = preferLineBreak(text.slice(0, fittingPrefixLength(text, headBudget, countTokens)));
    const tailLength = Math.min(fittingSuffixLength(text, tailBudget, countTokens), text.length - head.length);
    const tail = text.slice(text.length - tailLength);
    const cutCharacters = text.length - head.length - tail.length;
    const cutTokens = Math.max(0, tokens - countTokens(head) - countTokens(tail));
    const capped = head + cutMarker(cutCharacters, cutTokens, text.length) + tail;
    const cappedTokens = countTokens(capped);

    // Tokens can merge across the joins; shrink both parts until the whole fits.
    if (cappedTokens <= maxTokens || (headBudget === 0 && tailBudget === 0)) {
      return { text: capped, tokens: cappedTokens, truncated: true, cutCharacters };
    }
    const excess = cappedTokens - maxTokens;
    headBudget = Math.max(0, headBudget - Math.ceil(excess * headShare) - 1);
    tailBudget = Math.max(0, tailBudget - Math.ceil(excess * (1 - headShare)) - 1);
  }
}

/**
 * Formats a tool result as text capped at `maxTokens` tokens (head and tail kept, with a marker
 * stating how much was cut).
 */
export function formatToolResult(result: CallToolResult, maxTokens: number, countTokens: (text: string) => number): string {
  return capText(toolResultToText(result), maxTokens, countTokens).text;
}
