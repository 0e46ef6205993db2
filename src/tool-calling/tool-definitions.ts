// Turns the host's registered tools into the OpenAI-style function objects that the model's chat
// template receives as `tools`. The template itself writes them into the system prompt; nothing
// here builds prompt text.

import type { ChatToolDefinition } from "../engine/types.js";
import type { RegisteredTool } from "../host/types.js";

export interface ToolDefinitionOptions {
  /**
   * Drop schema keys the model does not need (`$schema`, `title`, `$comment`, `examples`) and
   * leave out output schemas and annotations (default true). Validation always uses the full
   * input schema.
   */
  compact?: boolean;
  /**
   * Cut descriptions (the tool's and every property's) to their first sentence, capped at this
   * many characters (default: keep descriptions whole). The last resort when tools do not fit.
   */
  maxDescriptionChars?: number;
}

// Keys that only serve validators or humans. `title` is removed only where it is schema metadata,
// never when it is the name of a property.
const metadataKeys = new Set(["$schema", "title", "$comment", "examples"]);

// Keys whose value is a map from names to subschemas; the names themselves are kept as they are.
const schemaMapKeys = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);

/** Returns a copy of a JSON Schema without metadata keys, descending into every subschema. */
export function compactSchema(schema: unknown, maxDescriptionChars?: number): unknown {
  if (Array.isArray(schema)) return schema.map((item) => compactSchema(item, maxDescriptionChars));
  if (typeof schema !== "object" || schema === null) return schema;

  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (metadataKeys.has(key)) continue;
    if (key === "description" && typeof value === "string") {
      result[key] = shortenDescription(value, maxDescriptionChars);
    } else if (schemaMapKeys.has(key) && typeof value === "object" && value !== null && !Array.isArray(value)) {
      result[key] = Object.fromEntries(
        Object.entries(value).map(([name, subschema]) => [name, compactSchema(subschema, maxDescriptionChars)]),
      );
    } else if (key === "enum" || key === "const" || key === "default" || key === "required") {
      result[key] = value; // data, not schemas
    } else {
      result[key] = compactSchema(value, maxDescriptionChars);
    }
  }
  return result;
}

/** Cuts a description to its first sentence and then to `maxChars` (an ellipsis marks the cut). */
export function shortenDescription(description: string, maxChars?: number): string {
  const text = description.trim();
  if (maxChars === undefined) return text;

  const sentenceEnd = /[.!?](\s|$)/.exec(text);
  let short = sentenceEnd ? text.slice(0, sentenceEnd.index + 1) : text;
  if (short.length > maxChars) {
    const cut = Array.from(short).slice(0, Math.max(1, maxChars - 1)).join("");
    short = `${cut.trimEnd()}…`;
  }
  return short;
}

/** Builds one chat-template tool object from a registered tool. */
export function toChatToolDefinition(tool: RegisteredTool, options: ToolDefinitionOptions = {}): ChatToolDefinition {
  const compact = options.compact ?? true;
  const parameters = compact
    ? (compactSchema(tool.inputSchema, options.maxDescriptionChars) as Record<string, unknown>)
    : tool.inputSchema;

  const description = tool.description ?? tool.title ?? tool.annotations?.title;
  if (description === undefined || description.trim() === "") {
    return { type: "function", function: { name: tool.name, parameters } };
  }
  const text = compact ? shortenDescription(description, options.maxDescriptionChars) : description;
  return { type: "function", function: { name: tool.name, description: text, parameters } };
}

/** Builds the `tools` list for the chat template, compacted by default. */
export function toChatToolDefinitions(tools: readonly RegisteredTool[], options: ToolDefinitionOptions = {}): ChatToolDefinition[] {
  return tools.map((tool) => toChatToolDefinition(tool, options));
}
