// The `generate` tool: plain generation with the local model from a prompt or a message list.

import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";

import { NessoError } from "../../errors.js";
import type { ChatMessage, FinishReason } from "../../engine/types.js";
import type { RequestContext, RequestExtra, ServerRuntime } from "../runtime.js";
import { errorResult, structuredResult } from "../tool-result.js";

const finishReasons = ["stop", "length", "abort", "context_full"] as const satisfies readonly FinishReason[];

const inputShape = {
  prompt: z.string().min(1).optional().describe("The user message to answer. Give either prompt or messages."),
  messages: z
    .array(
      z.object({
        role: z.enum(["system", "user", "assistant"]),
        content: z.string(),
      }),
    )
    .min(1)
    .optional()
    .describe("A conversation to continue, oldest first; the model writes the next assistant turn. Give either prompt or messages."),
  max_tokens: z.number().int().min(1).max(32_768).optional().describe("Maximum tokens to generate (default 256)."),
  temperature: z.number().min(0).max(2).optional().describe("Sampling temperature; 0 (the default) always picks the most likely token."),
  stop: z.array(z.string().min(1)).max(8).optional().describe("Strings that end the generation; the returned text stops before them."),
  raw: z
    .boolean()
    .optional()
    .describe("When true, prompt is passed to the model verbatim instead of through its chat template (default false)."),
};

const outputShape = {
  text: z.string().describe("The generated text."),
  finish_reason: z.enum(finishReasons).describe("stop: the model ended its turn or a stop string matched; length: max_tokens reached; context_full: the context window is full."),
  prompt_tokens: z.number().int(),
  generated_tokens: z.number().int(),
};

export type GenerateArguments = z.infer<z.ZodObject<typeof inputShape>>;

const defaultMaxTokens = 256;

export function registerGenerateTool(server: McpServer, runtime: ServerRuntime): void {
  server.registerTool(
    "generate",
    {
      title: "Generate text with the local model",
      description:
        "Generates text with Nesso-0.4B, a small local Italian/English model with a 4,096-token context. " +
        "Good for short drafts, rewording, translation between Italian and English, and simple questions; " +
        "not for facts it cannot know or long reasoning. Give a prompt or a message list; the reply is the model's next turn. " +
        "Runs offline; calls are queued, so one call at a time uses the model.",
      inputSchema: inputShape,
      outputSchema: outputShape,
      annotations: { title: "Generate text with the local model", readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args, extra) => {
      const problem = checkGenerateArguments(args);
      if (problem !== undefined) return errorResult("generate", problem, extra.requestId);
      try {
        const result = await runtime.runRequest("generate", extra, (context) => generate(runtime, context, args));
        return structuredResult(result, result.text);
      } catch (error) {
        return errorResult("generate", error, extra.requestId);
      }
    },
  );
}

/** Returns why the arguments cannot be used, or undefined when they can. */
function checkGenerateArguments(args: GenerateArguments): string | undefined {
  if ((args.prompt === undefined) === (args.messages === undefined)) {
    return "give exactly one of prompt (a string) or messages (a list of {role, content}); both or neither were given";
  }
  if (args.raw === true && args.prompt === undefined) return "raw: true needs prompt, because messages always go through the chat template";
  return undefined;
}

export interface GenerateOutput extends Record<string, unknown> {
  text: string;
  finish_reason: FinishReason;
  prompt_tokens: number;
  generated_tokens: number;
}

async function generate(runtime: ServerRuntime, context: RequestContext, args: GenerateArguments): Promise<GenerateOutput> {
  const { model, signal, progress } = context;
  const messages: ChatMessage[] = args.messages ?? [{ role: "user", content: args.prompt! }];
  const prompt = args.raw === true ? args.prompt! : model.renderChat(messages, { addGenerationPrompt: true });
  const promptTokens = model.countTokens(prompt);
  if (promptTokens >= model.contextSize) {
    throw new NessoError(
      "CONTEXT_FULL",
      `the prompt has ${promptTokens} tokens but the model's context holds ${model.contextSize}, leaving no room to generate; shorten the prompt or the messages`,
    );
  }
  const maxTokens = args.max_tokens ?? defaultMaxTokens;

  let generated = 0;
  let reported = 0;
  for await (const record of model.generate(prompt, { maxTokens, temperature: args.temperature ?? 0, stop: args.stop, signal })) {
    if (record.kind === "token") {
      generated++;
      if (generated - reported >= runtime.progressEveryTokens) {
        progress.advance(generated - reported, `generated ${generated} of at most ${maxTokens} tokens`);
        reported = generated;
      }
      continue;
    }
    if (record.finishReason === "abort") signal.throwIfAborted();
    return {
      text: record.text,
      finish_reason: record.finishReason,
      prompt_tokens: record.promptTokens,
      generated_tokens: record.generatedTokens,
    };
  }
  throw new NessoError("INTERNAL", "generate: the model's stream ended without a finish record");
}
