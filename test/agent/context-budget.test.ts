import { describe, expect, it } from "vitest";

import { fitMessagesToContext } from "../../src/agent/context-budget.js";
import type { ChatMessage } from "../../src/engine/types.js";
import { NessoError } from "../../src/errors.js";
import { ScriptedChatModel } from "./scripted-model.js";

function toolStep(index: number, resultWords: number, proseWords = 0): ChatMessage[] {
  return [
    {
      role: "assistant",
      content: "leggo ".repeat(proseWords).trim(),
      tool_calls: [{ id: `call_${index}_1`, type: "function", function: { name: "read_text_file", arguments: { path: `file${index}.txt` } } }],
    },
    { role: "tool", name: "read_text_file", tool_call_id: `call_${index}_1`, content: `contenuto ${index}: ${"perché ".repeat(resultWords)}` },
  ];
}

const conversation: ChatMessage[] = [
  { role: "system", content: "Sei un assistente." },
  { role: "user", content: "Leggi i file e riassumi." },
  ...toolStep(1, 150, 100),
  ...toolStep(2, 150),
  ...toolStep(3, 150),
];

describe("fitMessagesToContext", () => {
  it("returns the messages unchanged when they fit", () => {
    const model = new ScriptedChatModel([], { contextSize: 4096 });
    const fit = fitMessagesToContext({ model, messages: conversation, tools: [], reservedOutputTokens: 512 });
    expect(fit.droppedMessages).toBe(0);
    expect(fit.messages).toBe(conversation);
    expect(fit.promptTokens).toBe(model.countTokens(fit.prompt));
  });

  it("drops a call together with its result", () => {
    // Overflow by 5 tokens: dropping the long first assistant message alone would be enough.
    const full = new ScriptedChatModel([]);
    const fullTokens = full.countTokens(full.renderChat(conversation));
    const model = new ScriptedChatModel([], { contextSize: fullTokens + 128 - 5 });

    const fit = fitMessagesToContext({ model, messages: conversation, tools: [], reservedOutputTokens: 128 });

    expect(fit.droppedMessages).toBe(2);
    expect(fit.promptTokens).toBeLessThanOrEqual(model.contextSize - 128);
    fit.messages.forEach((message, index) => {
      if (message.role !== "tool") return;
      const call = fit.messages[index - 1];
      expect(call.role).toBe("assistant");
      expect(call.tool_calls?.[0].id).toBe(message.tool_call_id);
    });
  });

  it("keeps system, request and latest step", () => {
    const model = new ScriptedChatModel([], { contextSize: 700 });

    const fit = fitMessagesToContext({ model, messages: conversation, tools: [], reservedOutputTokens: 128 });

    expect(fit.messages[0]).toEqual(conversation[0]);
    expect(fit.messages[1]).toEqual(conversation[1]);
    expect(fit.messages.slice(-2)).toEqual(conversation.slice(-2));
    expect(fit.messages[2].role).toBe("system");
    expect(fit.messages[2].content).toContain(`${fit.droppedMessages} earlier messages were removed`);
    expect(fit.prompt).not.toContain("contenuto 1:");
  });

  it("throws CONTEXT_FULL when the protected part does not fit", () => {
    const model = new ScriptedChatModel([], { contextSize: 300 });
    let error: unknown;
    try {
      fitMessagesToContext({ model, messages: conversation, tools: [], reservedOutputTokens: 128 });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(NessoError);
    expect((error as NessoError).code).toBe("CONTEXT_FULL");
    expect((error as NessoError).message).toMatch(/The prompt needs \d+ tokens .* context window of 300 tokens leaves 172/);
  });
});
