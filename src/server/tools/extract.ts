// The `extract` tool: JSON that validates against a caller's JSON Schema, drawn from a text by the
// local model. A grammar built from the schema constrains every token when the grammar engine can
// compile the schema. Output that still fails ajv validation (a cut-off value, a schema keyword the
// grammar does not enforce) goes back to the model with the violations, a bounded number of times.

import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";

import { NessoError } from "../../errors.js";
import type { ChatMessage } from "../../engine/types.js";
import { parseLenientJson } from "../../tool-calling/lenient-json.js";
import { compileJsonSchema, type CompiledSchema } from "../json-schema.js";
import type { RequestContext, ServerRuntime } from "../runtime.js";
import { errorResult, structuredResult } from "../tool-result.js";

const inputShape = {
  text: z.string().min(1).describe("The text to extract from (Italian, English or mixed)."),
  schema: z
    .record(z.string(), z.unknown())
    .describe('A JSON Schema for the result, e.g. {"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}.'),
  instructions: z.string().optional().describe("Extra guidance for the model, e.g. which dates or amounts to pick."),
  max_attempts: z.number().int().min(1).max(5).optional().describe("Tries before giving up on valid JSON (default 3)."),
  max_tokens: z.number().int().min(1).max(4096).optional().describe("Maximum tokens of each attempt (default 512)."),
};

const outputShape = {
  data: z.unknown().describe("The extracted JSON value; it validates against the given schema."),
  attempts: z.number().int().describe("How many generations it took."),
};

export type ExtractArguments = z.infer<z.ZodObject<typeof inputShape>>;

const defaultAttempts = 3;
const defaultMaxTokens = 512;

export function registerExtractTool(server: McpServer, runtime: ServerRuntime): void {
  server.registerTool(
    "extract",
    {
      title: "Extract JSON from text with the local model",
      description:
        "Extracts structured data from a text with the local Nesso-0.4B model and returns JSON that validates against the JSON Schema you give. " +
        "Keep schemas small and flat, with short property names; the model is small and its context holds 4,096 tokens (text, schema and output together). " +
        "The output is constrained to the schema while it is generated and validated afterwards; invalid output is retried, " +
        "and when no attempt validates, the result is an error that lists the violations.",
      inputSchema: inputShape,
      outputSchema: outputShape,
      annotations: { title: "Extract JSON from text", readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args, extra) => {
      let schema: CompiledSchema;
      try {
        schema = compileJsonSchema(args.schema);
      } catch (error) {
        return errorResult("extract", error, extra.requestId);
      }
      try {
        const outcome = await runtime.runRequest("extract", extra, (context) => extract(runtime, context, args, schema));
        if (!outcome.ok) return errorResult("extract", outcome.message, extra.requestId);
        return structuredResult({ data: outcome.data, attempts: outcome.attempts }, JSON.stringify(outcome.data));
      } catch (error) {
        return errorResult("extract", error, extra.requestId);
      }
    },
  );
}

export type ExtractOutcome = { ok: true; data: unknown; attempts: number } | { ok: false; message: string };

/** Builds the conversation of the first attempt: the schema and rules in the system turn, the text as the user turn. */
export function extractionMessages(args: Pick<ExtractArguments, "text" | "schema" | "instructions">): ChatMessage[] {
  const system =
    "You extract data from the user's text. Reply with one JSON value that validates against this JSON Schema, and nothing else: " +
    "no explanation, no code fence.\n" +
    `JSON Schema: ${JSON.stringify(args.schema)}` +
    (args.instructions === undefined || args.instructions.trim() === "" ? "" : `\nInstructions: ${args.instructions.trim()}`);
  return [
    { role: "system", content: system },
    { role: "user", content: args.text },
  ];
}

async function extract(runtime: ServerRuntime, context: RequestContext, args: ExtractArguments, schema: CompiledSchema): Promise<ExtractOutcome> {
  const { model, signal, progress } = context;
  const attempts = args.max_attempts ?? defaultAttempts;
  const messages = extractionMessages(args);
  const failures: string[] = [];

  for (let attempt = 1; attempt <= attempts; attempt++) {
    progress.advance(1, `extraction attempt ${attempt} of ${attempts}`);
    const prompt = model.renderChat(messages, { addGenerationPrompt: true });
    const promptTokens = model.countTokens(prompt);
    if (promptTokens >= model.contextSize) {
      throw new NessoError(
        "CONTEXT_FULL",
        `the text and schema take ${promptTokens} tokens but the model's context holds ${model.contextSize}; shorten the text or the schema`,
      );
    }

    const constraint = (await runtime.models.grammars())?.jsonConstraint(args.schema);
    let output = "";
    for await (const record of model.generate(prompt, { maxTokens: args.max_tokens ?? defaultMaxTokens, temperature: 0, signal, constraint })) {
      if (record.kind === "finish") {
        if (record.finishReason === "abort") signal.throwIfAborted();
        output = record.text;
      }
    }

    const problems = checkOutput(output, schema);
    if (problems.length === 0) return { ok: true, data: parseOutput(output), attempts: attempt };
    failures.push(`attempt ${attempt}: ${problems.join("; ")}`);
    messages.push(
      { role: "assistant", content: output },
      { role: "user", content: `That reply is not valid: ${problems.join("; ")}. Reply again with only the corrected JSON.` },
    );
  }

  return {
    ok: false,
    message: `the model did not produce JSON that validates against the schema in ${attempts} attempts (${failures.join(" | ")}); simplify the schema, shorten the text or raise max_attempts`,
  };
}

/** Returns the content of a Markdown code fence when the output has one, else the whole output, trimmed. */
function jsonText(output: string): string {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(output);
  return (fenced ? fenced[1] : output).trim();
}

function parseOutput(output: string): unknown {
  const parsed = parseLenientJson(jsonText(output), { closeUnterminated: true });
  return parsed.ok ? parsed.values[0] : undefined;
}

/** Returns the problems of one output: unreadable JSON, several values, or schema violations. */
function checkOutput(output: string, schema: CompiledSchema): string[] {
  const text = jsonText(output);
  if (text === "") return ["the reply was empty"];
  const parsed = parseLenientJson(text, { closeUnterminated: true });
  if (!parsed.ok) return [`the reply is not JSON (${parsed.message})`];
  if (parsed.values.length !== 1) return [`the reply holds ${parsed.values.length} JSON values instead of one`];
  return schema.check(parsed.values[0]);
}
