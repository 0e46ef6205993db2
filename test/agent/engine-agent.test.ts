// The agent loop on the real native engine with the tiny random-weight checkpoint. Random weights
// write no tool calls by themselves, so a forcing constraint masks every step down to the next
// token of a scripted text. The tokens still come from the engine's sampler, KV cache and stream
// decoder, and the loop does its real work around them.

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { AgentEvent } from "../../src/agent/events.js";
import { runAgent } from "../../src/agent/run-agent.js";
import { EngineChatModel } from "../../src/engine/chat-model.js";
import { Model } from "../../src/engine/model.js";
import type {
  ChatMessage,
  ChatModel,
  ChatToolDefinition,
  FinishRecord,
  GenerateOptions,
  GenerationRecord,
  TokenConstraint,
} from "../../src/engine/types.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { MemoryExecutor, weatherTool } from "./memory-executor.js";

let model: Model;

beforeAll(async () => {
  model = await Model.load(tinyCheckpoint("F32"), { threads: 1 });
});

afterAll(() => model?.dispose());

/** Allows exactly one token per step: the next id of `ids`, then `<|im_end|>`. */
function forceTokens(ids: number[], vocabSize: number, endId: number): TokenConstraint {
  const sequence = [...ids, endId];
  let position = 0;
  return {
    mask() {
      const mask = new Uint8Array(vocabSize);
      mask[sequence[Math.min(position, sequence.length - 1)]] = 1;
      return mask;
    },
    accept() {
      position += 1;
    },
    isComplete: () => false,
  };
}

interface EngineCall {
  options: GenerateOptions;
  continuation: boolean;
  finish?: FinishRecord;
}

/** Drives the real engine through scripted turns by forcing their tokens. */
class ForcedEngineModel implements ChatModel {
  readonly calls: EngineCall[] = [];
  private turn = -1;

  constructor(
    private readonly chat: EngineChatModel,
    private readonly turns: string[],
  ) {}

  get contextSize(): number {
    return this.chat.contextSize;
  }

  countTokens(text: string): number {
    return this.chat.countTokens(text);
  }

  renderChat(messages: ChatMessage[], options?: { tools?: ChatToolDefinition[]; addGenerationPrompt?: boolean }): string {
    return this.chat.renderChat(messages, options);
  }

  async *generate(prompt: string, options: GenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
    const marker = "<|im_start|>assistant\n";
    const generated = prompt.slice(prompt.lastIndexOf(marker) + marker.length);
    const continuation = generated !== "";
    if (!continuation) this.turn += 1;
    const script = this.turns[this.turn];
    if (!script.startsWith(generated)) throw new Error(`forced engine model: ${JSON.stringify(generated)} is not a prefix of turn ${this.turn + 1}`);

    const call: EngineCall = { options, continuation };
    this.calls.push(call);
    const [endId] = model.encode("<|im_end|>");
    const constraint = forceTokens(model.encode(script.slice(generated.length)), model.config.vocabSize, endId);
    for await (const record of this.chat.generate(prompt, { ...options, constraint })) {
      if (record.kind === "finish") call.finish = record;
      yield record;
    }
  }
}

describe("runAgent on the native engine", () => {
  it("runs a tool call and answers", async () => {
    const chat = new EngineChatModel(model, { contextSize: 1024 });
    const forced = new ForcedEngineModel(chat, [
      'Controllo il meteo. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Città di Castello"}}\n</tool_call>',
      "A Città di Castello c'è il sole ☀️.",
    ]);
    const host = new MemoryExecutor([weatherTool()]);
    const events: AgentEvent[] = [];

    const result = await runAgent({ task: "Che tempo fa a Città di Castello?", model: forced, host, onEvent: (event) => events.push(event) });
    chat.dispose();

    expect(result.finishReason).toBe("stop");
    expect(result.text).toBe("A Città di Castello c'è il sole ☀️.");
    expect(host.calls.map((call) => call.args)).toEqual([{ city: "Città di Castello" }]);
    expect(result.messages.find((message) => message.role === "tool")?.content).toBe("Sole a Città di Castello ☀️, 24 °C");

    // Prose sampled, the call greedy, then prose again in the next turn.
    expect(forced.calls.map((call) => [call.continuation, call.options.temperature])).toEqual([
      [false, 0.3],
      [true, 0],
      [false, 0.3],
    ]);
    // The greedy continuation found its prompt in the KV cache.
    const [prose, greedy] = forced.calls;
    expect(prose.finish).toBeUndefined(); // the loop stopped the prose generation at <tool_call>
    expect(greedy.finish?.finishReason).toBe("stop");
    expect(greedy.finish!.reusedTokens).toBeGreaterThan(greedy.finish!.promptTokens - 5);

    const streamed = events.flatMap((event) => (event.type === "text" ? [event.text] : [])).join("");
    expect(streamed).toBe("Controllo il meteo. A Città di Castello c'è il sole ☀️.");
  });

  it("ends an unconstrained random turn cleanly", async () => {
    const chat = new EngineChatModel(model, { contextSize: 512 });
    const host = new MemoryExecutor([weatherTool()]);

    const result = await runAgent({ task: "Ciao! 🙂", model: chat, host, maxOutputTokens: 16, maxSteps: 2 });
    chat.dispose();

    expect(["stop", "length"]).toContain(result.finishReason);
    expect(result.steps).toBe(1);
  });
});
