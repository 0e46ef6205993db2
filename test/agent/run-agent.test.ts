import { afterEach, describe, expect, it } from "vitest";

import type { AgentEvent } from "../../src/agent/events.js";
import { runAgent } from "../../src/agent/run-agent.js";
import { LogLevel, getLogLevel, setLogLevel, setLogSink } from "../../src/logger.js";
import { MemoryExecutor, delay, textResult, weatherTool, type MemoryTool } from "./memory-executor.js";
import { ScriptedChatModel } from "./scripted-model.js";

function toolCall(name: string, args: Record<string, unknown>): string {
  return `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;
}

/** Returns the prompt of the nth assistant turn (1-based), skipping the greedy continuations inside turns. */
function turnPrompt(model: ScriptedChatModel, turn: number): string {
  return model.calls.filter((call) => !call.continuation)[turn - 1].prompt;
}

function collectEvents(): { events: AgentEvent[]; onEvent: (event: AgentEvent) => void } {
  const events: AgentEvent[] = [];
  return { events, onEvent: (event) => events.push(event) };
}

function eventsOfType<T extends AgentEvent["type"]>(events: AgentEvent[], type: T): Array<Extract<AgentEvent, { type: T }>> {
  return events.filter((event): event is Extract<AgentEvent, { type: T }> => event.type === type);
}

describe("runAgent", () => {
  it("runs a single call and answers", async () => {
    const model = new ScriptedChatModel([
      toolCall("get_weather", { city: "Roma" }),
      "A Roma c'è il sole ☀️ e ci sono 24 °C.",
    ]);
    const host = new MemoryExecutor([weatherTool()]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Che tempo fa a Roma?", model, host, onEvent });

    expect(result.finishReason).toBe("stop");
    expect(result.text).toBe("A Roma c'è il sole ☀️ e ci sono 24 °C.");
    expect(result.steps).toBe(2);
    expect(host.calls.map((call) => call.args)).toEqual([{ city: "Roma" }]);

    const toolMessage = result.messages.find((message) => message.role === "tool");
    expect(toolMessage?.content).toBe("Sole a Roma ☀️, 24 °C");
    expect(toolMessage?.name).toBe("get_weather");

    // The tool result reaches the model through the template's <tool_response> block.
    const answerPrompt = turnPrompt(model, 2);
    expect(answerPrompt).toContain("<tool_response>\nSole a Roma ☀️, 24 °C\n</tool_response>");
    expect(answerPrompt).toContain('"name": "get_weather"');

    expect(events.map((event) => event.type).filter((type) => type !== "text")).toEqual(["tool_call", "tool_result", "final"]);
    const streamed = eventsOfType(events, "text").map((event) => event.text).join("");
    expect(streamed).toBe("A Roma c'è il sole ☀️ e ci sono 24 °C.");
    expect(eventsOfType(events, "text").length).toBeGreaterThan(5);
  });

  it("decodes tool calls greedily and prose with sampling", async () => {
    const model = new ScriptedChatModel(["Controllo. " + toolCall("get_weather", { city: "Bari" }), "Fatto."]);
    const host = new MemoryExecutor([weatherTool()]);

    await runAgent({ task: "Meteo a Bari?", model, host, sampling: { temperature: 0.7, repeatPenalty: 1.1 } });

    const [prose, greedy, answer] = model.calls;
    expect(model.calls).toHaveLength(3);
    expect(prose.continuation).toBe(false);
    expect(prose.options.temperature).toBe(0.7);
    expect(prose.options.repeatPenalty).toBe(1.1);

    expect(greedy.continuation).toBe(true);
    expect(greedy.prompt.startsWith(prose.prompt)).toBe(true);
    expect(greedy.prompt.slice(prose.prompt.length)).toMatch(/^Controllo\. <tool_call>/);
    expect(greedy.options.temperature).toBe(0);
    expect(greedy.options.repeatPenalty).toBe(1);

    expect(answer.continuation).toBe(false);
    expect(answer.options.temperature).toBe(0.7);
  });

  it("constrains only the greedy part of a tool call", async () => {
    const model = new ScriptedChatModel([toolCall("get_weather", { city: "Bari" }), "Fatto."]);
    const host = new MemoryExecutor([weatherTool()]);
    const requests: Array<{ tools: string[]; textAfterOpenTag: string }> = [];
    const constraint = { mask: () => null, accept: () => {}, isComplete: () => false };

    await runAgent({
      task: "Meteo a Bari?",
      model,
      host,
      toolCallConstraint: (request) => {
        requests.push({ tools: request.tools.map((tool) => tool.function.name), textAfterOpenTag: request.textAfterOpenTag });
        return constraint;
      },
    });

    expect(requests).toHaveLength(1);
    expect(requests[0].tools).toEqual(["get_weather"]);
    const greedy = model.calls.find((call) => call.continuation)!;
    expect(greedy.options.constraint).toBe(constraint);
    expect(greedy.prompt.endsWith(`<tool_call>${requests[0].textAfterOpenTag}`)).toBe(true);
    expect(model.calls.filter((call) => call.options.constraint !== undefined)).toHaveLength(1);
  });

  it("uses temperature 0.3 for prose by default", async () => {
    const model = new ScriptedChatModel(["Ciao!"]);
    await runAgent({ task: "Ciao", model, host: new MemoryExecutor([]) });
    expect(model.calls[0].options.temperature).toBe(0.3);
  });

  it("runs parallel calls concurrently", async () => {
    const slow: MemoryTool = {
      ...weatherTool(async (args, options) => {
        await delay(150, options.signal);
        return textResult(`Meteo di ${String(args.city)}: nuvoloso`);
      }),
    };
    const model = new ScriptedChatModel([
      `${toolCall("get_weather", { city: "Milano" })}\n${toolCall("get_weather", { city: "Napoli" })}`,
      "Milano e Napoli sono nuvolose.",
    ]);
    const host = new MemoryExecutor([slow]);

    const result = await runAgent({ task: "Meteo a Milano e Napoli?", model, host });

    expect(result.finishReason).toBe("stop");
    expect(host.calls).toHaveLength(2);
    const [first, second] = host.calls;
    // Both started before either ended.
    expect(second.startedAt).toBeLessThan(first.endedAt!);
    expect(first.startedAt).toBeLessThan(second.endedAt!);

    const toolContents = result.messages.filter((message) => message.role === "tool").map((message) => message.content);
    expect(toolContents).toEqual(["Meteo di Milano: nuvoloso", "Meteo di Napoli: nuvoloso"]);
    expect(model.calls.at(-1)!.prompt).toContain(
      "<tool_response>\nMeteo di Milano: nuvoloso\n</tool_response>\n<tool_response>\nMeteo di Napoli: nuvoloso\n</tool_response>",
    );
  });

  it("feeds a tool error back and succeeds on retry", async () => {
    const tool: MemoryTool = {
      ...weatherTool((args) =>
        args.city === "Rome" ? textResult("Unknown city: Rome. Use the Italian name.", true) : textResult("Roma: sereno"),
      ),
    };
    const model = new ScriptedChatModel([
      toolCall("get_weather", { city: "Rome" }),
      toolCall("get_weather", { city: "Roma" }),
      "A Roma è sereno.",
    ]);
    const host = new MemoryExecutor([tool]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Meteo a Roma?", model, host, onEvent });

    expect(result.finishReason).toBe("stop");
    expect(host.calls.map((call) => call.args.city)).toEqual(["Rome", "Roma"]);
    const results = eventsOfType(events, "tool_result");
    expect(results.map((event) => event.isError)).toEqual([true, false]);
    expect(results[0].content).toContain("Error from get_weather: Unknown city: Rome.");
    expect(results[0].content).toContain("2 retries left");
    expect(turnPrompt(model, 2)).toContain("Error from get_weather: Unknown city: Rome.");
  });

  it("feeds a schema violation back without calling the tool", async () => {
    const model = new ScriptedChatModel([
      toolCall("get_weather", { city: 42, units: "C" }),
      toolCall("get_weather", { city: "Torino" }),
      "A Torino c'è il sole.",
    ]);
    const host = new MemoryExecutor([weatherTool()]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Meteo a Torino?", model, host, onEvent });

    expect(result.finishReason).toBe("stop");
    expect(host.calls.map((call) => call.args)).toEqual([{ city: "Torino" }]);
    const [error] = eventsOfType(events, "error");
    expect(error.kind).toBe("invalid_arguments");
    expect(error.message).toContain('"city" must be string');
    expect(error.message).toContain('unknown property "units"');
    expect(error.message).toContain("city (string, required)");
    expect(turnPrompt(model, 2)).toContain("Invalid arguments for get_weather");
  });

  it("feeds an unknown tool back with the tool names", async () => {
    const model = new ScriptedChatModel([toolCall("weather", { city: "Roma" }), toolCall("get_weather", { city: "Roma" }), "Sole."]);
    const host = new MemoryExecutor([weatherTool()]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Meteo?", model, host, onEvent });

    expect(result.finishReason).toBe("stop");
    const [error] = eventsOfType(events, "error");
    expect(error.kind).toBe("unknown_tool");
    expect(error.message).toContain('Unknown tool "weather". The available tools are: get_weather.');
    expect(host.calls).toHaveLength(1);
  });

  it("feeds a parse error back", async () => {
    const model = new ScriptedChatModel(['<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>', toolCall("get_weather", { city: "Roma" }), "Sole."]);
    const host = new MemoryExecutor([weatherTool()]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Meteo?", model, host, onEvent });

    expect(result.finishReason).toBe("stop");
    const [error] = eventsOfType(events, "error");
    expect(error.kind).toBe("parse");
    expect(error.message).toContain("not valid JSON");
    // The next prompt shows the model what it wrote and why it failed.
    expect(turnPrompt(model, 2)).toContain('{"city": }');
    expect(turnPrompt(model, 2)).toContain("<tool_response>\nThe <tool_call> block is not valid JSON");
  });

  it("stops a loop of identical calls", async () => {
    const call = toolCall("get_weather", { city: "Roma" });
    const model = new ScriptedChatModel([call, call, call, "never reached"]);
    const host = new MemoryExecutor([weatherTool()]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Meteo a Roma?", model, host, onEvent });

    expect(result.finishReason).toBe("loop");
    expect(result.text).toContain("called get_weather with the same arguments 3 times");
    expect(host.calls).toHaveLength(2);
    expect(model.turnsUsed).toBe(3);
    expect(eventsOfType(events, "final")[0].finishReason).toBe("loop");
  });

  it("stops after the retries of a failing tool", async () => {
    const failing = weatherTool(() => textResult("service unavailable", true));
    const model = new ScriptedChatModel([
      toolCall("get_weather", { city: "Roma" }),
      toolCall("get_weather", { city: "Milano" }),
      toolCall("get_weather", { city: "Napoli" }),
      "never reached",
    ]);
    const host = new MemoryExecutor([failing]);

    const result = await runAgent({ task: "Meteo?", model, host });

    expect(result.finishReason).toBe("retries_exhausted");
    expect(result.text).toContain("the call to get_weather failed 3 times (1 attempt and 2 retries)");
    expect(host.calls).toHaveLength(3);
  });

  it("stops at max steps", async () => {
    const model = new ScriptedChatModel([
      toolCall("get_weather", { city: "Roma" }),
      toolCall("get_weather", { city: "Milano" }),
      "never reached",
    ]);
    const host = new MemoryExecutor([weatherTool()]);

    const result = await runAgent({ task: "Meteo ovunque", model, host, maxSteps: 2 });

    expect(result.finishReason).toBe("max_steps");
    expect(result.steps).toBe(2);
    expect(result.text).toContain("Stopped after 2 steps");
    expect(result.text).toContain("get_weather");
    expect(host.calls).toHaveLength(1);
  });

  it("caps a long tool result", async () => {
    const longText = `INIZIO ${"riga di testo con caffè ☕ e perché\n".repeat(600)}FINE`;
    const tool: MemoryTool = { ...weatherTool(() => textResult(longText)) };
    const model = new ScriptedChatModel([toolCall("get_weather", { city: "Roma" }), "Troppo lungo."]);
    const host = new MemoryExecutor([tool]);
    const { events, onEvent } = collectEvents();

    await runAgent({ task: "Meteo?", model, host, onEvent, toolResultMaxTokens: 200 });

    const [result] = eventsOfType(events, "tool_result");
    expect(result.truncated).toBe(true);
    expect(model.countTokens(result.content)).toBeLessThanOrEqual(200);
    expect(result.content.startsWith("INIZIO")).toBe(true);
    expect(result.content.endsWith("FINE")).toBe(true);
    expect(result.content).toMatch(/\[… \d+ of \d+ characters \(about \d+ tokens\) were cut from the middle of this result …\]/);
  });

  it("caps results at a quarter of the window by default", async () => {
    const tool: MemoryTool = { ...weatherTool(() => textResult("parola ".repeat(5000))) };
    const model = new ScriptedChatModel([toolCall("get_weather", { city: "Roma" }), "Ok."]);
    const { events, onEvent } = collectEvents();

    await runAgent({ task: "Meteo?", model, host: new MemoryExecutor([tool]), onEvent });

    const [result] = eventsOfType(events, "tool_result");
    expect(result.truncated).toBe(true);
    expect(model.countTokens(result.content)).toBeLessThanOrEqual(1024);
    expect(model.countTokens(result.content)).toBeGreaterThan(900);
  });

  it("rejects with the abort reason during generation", async () => {
    const model = new ScriptedChatModel(["Questa risposta è lunga ".repeat(50)], { chunkDelayMs: 2 });
    const controller = new AbortController();
    const reason = new Error("stopped by the user");
    let texts = 0;

    const run = runAgent({
      task: "Scrivi molto",
      model,
      host: new MemoryExecutor([]),
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === "text" && ++texts === 3) controller.abort(reason);
      },
    });

    await expect(run).rejects.toBe(reason);
    expect(texts).toBeLessThan(10);
  });

  it("rejects with the abort reason during a tool call", async () => {
    const controller = new AbortController();
    const reason = new Error("stopped during the tool");
    const slow = weatherTool(async (_args, options) => {
      setTimeout(() => controller.abort(reason), 20);
      await delay(5000, options.signal);
      return textResult("late");
    });
    const model = new ScriptedChatModel([toolCall("get_weather", { city: "Roma" }), "never reached"]);
    const host = new MemoryExecutor([slow]);
    const started = performance.now();

    await expect(runAgent({ task: "Meteo?", model, host, signal: controller.signal })).rejects.toBe(reason);

    expect(performance.now() - started).toBeLessThan(2000);
    expect(host.calls[0].signal?.aborted).toBe(true);
    expect(model.turnsUsed).toBe(1);
  });

  it("rejects at once when the signal already fired", async () => {
    const model = new ScriptedChatModel(["Ciao"]);
    const reason = new Error("already aborted");
    await expect(runAgent({ task: "Ciao", model, host: new MemoryExecutor([]), signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(model.calls).toHaveLength(0);
  });

  it("ends with length when the answer hits the token limit", async () => {
    const model = new ScriptedChatModel(["Una risposta piuttosto lunga che non finisce mai davvero."]);
    const result = await runAgent({ task: "Ciao", model, host: new MemoryExecutor([]), maxOutputTokens: 5 });
    expect(result.finishReason).toBe("length");
    expect(result.text.length).toBeLessThan(20);
  });

  it("treats a call cut by the token limit as a parse error", async () => {
    const model = new ScriptedChatModel([
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Reggio nell\'Emilia e dintorni"}}\n</tool_call>',
      "Sole.",
    ]);
    const host = new MemoryExecutor([weatherTool()]);
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "Meteo?", model, host, onEvent, maxOutputTokens: 12 });

    const [error] = eventsOfType(events, "error");
    expect(error.kind).toBe("parse");
    expect(error.message).toContain("output token limit");
    expect(host.calls).toHaveLength(0);
    expect(result.finishReason).toBe("stop");
  });

  it("rejects a run with no user message", async () => {
    const model = new ScriptedChatModel([]);
    await expect(runAgent({ messages: [{ role: "system", content: "x" }], model, host: new MemoryExecutor([]) })).rejects.toThrow(
      /no user message/,
    );
  });

  it("rejects an invalid maxSteps", async () => {
    const model = new ScriptedChatModel([]);
    await expect(runAgent({ task: "Ciao", model, host: new MemoryExecutor([]), maxSteps: 0 })).rejects.toThrow(
      "runAgent: option maxSteps must be a positive integer, but it is 0",
    );
  });
});

describe("runAgent approval", () => {
  const writeTool = (): MemoryTool => ({
    name: "write_note",
    description: "Write a note to a file.",
    inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
    annotations: { readOnlyHint: false, destructiveHint: true },
    server: "notes",
    handler: (args) => textResult(`scritto: ${String(args.text)}`),
  });

  it("denies a call the user rejects", async () => {
    const model = new ScriptedChatModel([toolCall("write_note", { text: "ciao" }), "Va bene, non scrivo."]);
    const host = new MemoryExecutor([writeTool()]);
    const asked: string[] = [];
    const { events, onEvent } = collectEvents();

    const result = await runAgent({
      task: "Scrivi ciao",
      model,
      host,
      onEvent,
      approval: {
        approve: async (request) => {
          asked.push(request.tool.name);
          return "deny";
        },
      },
    });

    expect(result.finishReason).toBe("stop");
    expect(asked).toEqual(["write_note"]);
    expect(host.calls).toHaveLength(0);
    const [error] = eventsOfType(events, "error");
    expect(error.kind).toBe("denied");
    expect(turnPrompt(model, 2)).toContain("Not run: the user denied the call of write_note.");
  });

  it("asks every time when allowed once", async () => {
    const model = new ScriptedChatModel([toolCall("write_note", { text: "uno" }), toolCall("write_note", { text: "due" }), "Fatto."]);
    const host = new MemoryExecutor([writeTool()]);
    let asked = 0;

    await runAgent({
      task: "Scrivi due note",
      model,
      host,
      approval: {
        approve: async () => {
          asked += 1;
          return "once";
        },
      },
    });

    expect(asked).toBe(2);
    expect(host.calls.map((call) => call.args.text)).toEqual(["uno", "due"]);
  });

  it("asks once when allowed for the run", async () => {
    const model = new ScriptedChatModel([toolCall("write_note", { text: "uno" }), toolCall("write_note", { text: "due" }), "Fatto."]);
    const host = new MemoryExecutor([writeTool()]);
    let asked = 0;

    await runAgent({
      task: "Scrivi due note",
      model,
      host,
      approval: {
        approve: async () => {
          asked += 1;
          return "run";
        },
      },
    });

    expect(asked).toBe(1);
    expect(host.calls).toHaveLength(2);
  });

  it("runs read-only tools without asking", async () => {
    const model = new ScriptedChatModel([toolCall("get_weather", { city: "Roma" }), "Sole."]);
    const host = new MemoryExecutor([weatherTool()]);
    let asked = 0;

    await runAgent({ task: "Meteo?", model, host, approval: { policy: "deny", approve: async () => (asked++, "deny") } });

    expect(asked).toBe(0);
    expect(host.calls).toHaveLength(1);
  });

  it("follows the server policy without a terminal", async () => {
    const run = async (approval: Parameters<typeof runAgent>[0]["approval"]) => {
      const model = new ScriptedChatModel([toolCall("write_note", { text: "ciao" }), "Ok."]);
      const host = new MemoryExecutor([writeTool()]);
      const { events, onEvent } = collectEvents();
      await runAgent({ task: "Scrivi", model, host, onEvent, approval });
      return { host, events };
    };

    expect((await run({ serverPolicies: { notes: "auto" } })).host.calls).toHaveLength(1);
    expect((await run({ policy: "deny" })).host.calls).toHaveLength(0);
    expect((await run({ policy: "deny", yes: true })).host.calls).toHaveLength(1);

    const asking = await run({ policy: "ask" });
    expect(asking.host.calls).toHaveLength(0);
    expect(eventsOfType(asking.events, "error")[0].message).toContain("there is no interactive terminal");
  });
});

describe("runAgent context", () => {
  let restoreSink: ((line: string) => void) | undefined;
  const level = getLogLevel();

  afterEach(() => {
    if (restoreSink !== undefined) setLogSink(restoreSink);
    restoreSink = undefined;
    setLogLevel(level);
  });

  it("drops old turns before the window overflows", async () => {
    const lines: string[] = [];
    restoreSink = setLogSink((line) => lines.push(line));
    setLogLevel(LogLevel.Info);

    const history = [];
    for (let i = 0; i < 12; i++) {
      history.push({ role: "user" as const, content: `Domanda ${i}: ${"parola ".repeat(40)}` });
      history.push({ role: "assistant" as const, content: `Risposta ${i}: ${"testo ".repeat(40)}` });
    }
    const model = new ScriptedChatModel(["Ultima risposta."], { contextSize: 1024 });
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ messages: history, task: "E adesso?", model, host: new MemoryExecutor([]), onEvent, maxOutputTokens: 128 });

    expect(result.finishReason).toBe("stop");
    const [context] = eventsOfType(events, "context");
    expect(context.droppedMessages).toBeGreaterThan(0);
    expect(context.promptTokens).toBeLessThanOrEqual(1024 - 128);
    const prompt = model.calls[0].prompt;
    expect(model.countTokens(prompt)).toBeLessThanOrEqual(1024 - 128);
    expect(prompt).toContain("earlier messages were removed to fit the context window");
    expect(prompt).toContain("E adesso?");
    expect(prompt).not.toContain("Domanda 0:");
    expect(lines.some((line) => line.includes("older messages out of the prompt"))).toBe(true);
    // The returned conversation keeps every message.
    expect(result.messages.filter((message) => message.role === "user")).toHaveLength(13);
  });

  it("ends with context_full when the request cannot fit", async () => {
    const model = new ScriptedChatModel(["never"], { contextSize: 256 });
    const { events, onEvent } = collectEvents();

    const result = await runAgent({ task: "parola ".repeat(400), model, host: new MemoryExecutor([]), onEvent, maxOutputTokens: 64 });

    expect(result.finishReason).toBe("context_full");
    expect(result.text).toMatch(/The prompt needs \d+ tokens/);
    expect(result.text).toContain("context window of 256 tokens");
    expect(eventsOfType(events, "error")[0].kind).toBe("context_full");
    expect(model.calls).toHaveLength(0);
  });
});
