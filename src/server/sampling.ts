// Generates the replies to `sampling/createMessage` requests of the servers in mcp.json with the
// local model. Such a request usually arrives while an agent request holds the queue and waits for
// that server's tool. So it skips the request queue and waits only for the engine lock.

import type { CreateMessageRequestParams, CreateMessageResult } from "@modelcontextprotocol/sdk/types.js";

import { NessoError } from "../errors.js";
import type { ChatMessage } from "../engine/types.js";
import type { SamplingHandler } from "../host/session.js";
import { createLogger } from "../logger.js";
import type { ServerRuntime } from "./runtime.js";

const log = createLogger("server");

/** The `model` name sent back in sampling results. */
export const samplingModelName = "nesso-0.4B-agentic";

export function createSamplingHandler(runtime: ServerRuntime): SamplingHandler {
  return async (params, context) => {
    const timeout = AbortSignal.timeout(runtime.requestTimeoutMs);
    const signal = AbortSignal.any([context.signal, timeout]);
    log.debug(() => `sampling/createMessage from "${context.server}": ${params.messages.length} messages, maxTokens ${params.maxTokens}`);

    const model = await runtime.models.get(signal);
    const prompt = model.renderChat(samplingMessages(params, context.server), { addGenerationPrompt: true });
    const stop = params.stopSequences?.filter((sequence) => sequence !== "");
    let text = "";
    let finishReason = "stop";
    for await (const record of model.generate(prompt, { maxTokens: params.maxTokens, temperature: params.temperature ?? 0, stop, signal })) {
      if (record.kind === "finish") {
        text = record.text;
        finishReason = record.finishReason;
      }
    }
    if (finishReason === "abort") {
      if (timeout.aborted) throw new NessoError("TIMEOUT", `sampling/createMessage from "${context.server}" timed out after ${runtime.requestTimeoutMs} ms`);
      signal.throwIfAborted();
    }
    const result: CreateMessageResult = {
      role: "assistant",
      content: { type: "text", text },
      model: samplingModelName,
      // NOTE: the engine reports a stop string and the end-of-turn token both as "stop", so a
      // matched stop sequence is reported as endTurn.
      stopReason: finishReason === "length" || finishReason === "context_full" ? "maxTokens" : "endTurn",
    };
    return result;
  };
}

/** Converts the request's system prompt and text messages; other content types are rejected with a reason. */
export function samplingMessages(params: CreateMessageRequestParams, server: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (params.systemPrompt !== undefined && params.systemPrompt !== "") messages.push({ role: "system", content: params.systemPrompt });
  for (const [index, message] of params.messages.entries()) {
    const blocks = Array.isArray(message.content) ? message.content : [message.content];
    const texts: string[] = [];
    for (const block of blocks) {
      if (block.type !== "text") {
        throw new NessoError(
          "UNSUPPORTED",
          `sampling/createMessage from "${server}": message ${index} has ${block.type} content, but the local model reads text only; send text content`,
        );
      }
      texts.push(block.text);
    }
    messages.push({ role: message.role, content: texts.join("\n") });
  }
  return messages;
}
