import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { measureToolTokens, selectToolsWithinBudget } from "../../src/agent/context-budget.js";
import type { AgentEvent } from "../../src/agent/events.js";
import { runAgent } from "../../src/agent/run-agent.js";
import { rankTools, requestTerms, stemItalian } from "../../src/agent/tool-selection.js";
import { LogLevel, getLogLevel, setLogLevel, setLogSink } from "../../src/logger.js";
import { toChatToolDefinitions } from "../../src/tool-calling/tool-definitions.js";
import { startFilesystemExecutor, type FilesystemExecutor } from "./filesystem-executor.js";
import { ScriptedChatModel } from "./scripted-model.js";

let filesystem: FilesystemExecutor;

beforeAll(async () => {
  filesystem = await startFilesystemExecutor();
});

afterAll(async () => {
  await filesystem?.close();
});

const system = { role: "system" as const, content: "Sei un assistente utile." };

describe("tool ranking", () => {
  it("sees the 14 filesystem tools", () => {
    expect(filesystem.listTools()).toHaveLength(14);
  });

  it.each([
    ["leggi il file note.txt", "read_text_file"],
    ["read the file note.txt", "read_text_file"],
    ["elenca i file nella cartella docs", "list_directory"],
    ["crea una cartella chiamata progetti", "create_directory"],
    ["sposta a.txt in archivio/a.txt", "move_file"],
    ["cerca tutti i file markdown", "search_files"],
    ["mostrami le informazioni sul file città.pdf", "get_file_info"],
    ["scrivi 'ciao' nel file saluti.txt", "write_file"],
    ["modifica il file config.json sostituendo foo con bar", "edit_file"],
    ["show me the directory tree of src", "directory_tree"],
    ["apri l'immagine foto.png", "read_media_file"],
    ["quali cartelle posso usare?", "list_allowed_directories"],
  ])("request %j ranks %s first", (request, expected) => {
    const [best] = rankTools(filesystem.listTools(), request);
    expect(best.tool.name).toBe(expected);
    expect(best.score).toBeGreaterThan(0);
  });

  it("ranks the deprecated read_file below read_text_file", () => {
    const names = rankTools(filesystem.listTools(), "read the file").map((entry) => entry.tool.name);
    expect(names.indexOf("read_text_file")).toBeLessThan(names.indexOf("read_file"));
  });

  it("keeps the host order when nothing matches", () => {
    const tools = filesystem.listTools();
    const ranked = rankTools(tools, "zzz qqq");
    expect(ranked.map((entry) => entry.tool.name)).toEqual(tools.map((tool) => tool.name));
    expect(ranked.every((entry) => entry.score === 0)).toBe(true);
  });

  it("maps Italian words to English terms", () => {
    const terms = requestTerms("Leggimi le cartelle, perché è già ora");
    expect(terms.has("read")).toBe(true);
    expect(terms.has("directory")).toBe(true);
    expect(terms.has("perche")).toBe(true);
  });

  it("stems Italian forms to one stem", () => {
    expect(new Set(["leggi", "leggere", "leggimi"].map(stemItalian))).toEqual(new Set(["legg"]));
    expect(stemItalian("cartella")).toBe(stemItalian("cartelle"));
  });
});

describe("tool budget selection", () => {
  it.each([["leggi il file note.txt"], ["read the file note.txt"]])("picks read_text_file for %j", (request) => {
    const model = new ScriptedChatModel([]);
    const baseMessages = [system, { role: "user" as const, content: request }];
    const allTokens = measureToolTokens(model, baseMessages, toChatToolDefinitions(filesystem.listTools()));

    // A budget of 400 tokens fits one or two of the 14 tools.
    const selection = selectToolsWithinBudget({ model, tools: filesystem.listTools(), baseMessages, request, maxToolTokens: 400 });

    expect(allTokens).toBeGreaterThan(1500);
    expect(selection.tools.map((tool) => tool.name)).toContain("read_text_file");
    expect(selection.tools.length).toBeLessThan(4);
    expect(selection.tokens).toBeLessThanOrEqual(400);
    expect(selection.tokens).toBe(measureToolTokens(model, baseMessages, selection.definitions));
    expect(selection.leftOut).toHaveLength(14 - selection.tools.length);
    expect(selection.descriptionsShortened).toBe(false);
  });

  it("keeps every tool when they fit", () => {
    const model = new ScriptedChatModel([]);
    const baseMessages = [system, { role: "user" as const, content: "ciao" }];
    const selection = selectToolsWithinBudget({ model, tools: filesystem.listTools(), baseMessages, request: "ciao", maxToolTokens: 3000 });
    expect(selection.tools).toHaveLength(14);
    expect(selection.leftOut).toHaveLength(0);
  });

  it("compacts schemas in the prompt", () => {
    const model = new ScriptedChatModel([]);
    const baseMessages = [system, { role: "user" as const, content: "ciao" }];
    const selection = selectToolsWithinBudget({ model, tools: filesystem.listTools(), baseMessages, request: "ciao", maxToolTokens: 3000 });
    const prompt = model.renderChat(baseMessages, { tools: selection.definitions });
    expect(prompt).not.toContain("$schema");
    expect(prompt).not.toContain("outputSchema");
    expect(prompt).not.toContain("readOnlyHint");
    expect(prompt).not.toContain('"title"');
    expect(prompt).toContain('"name": "read_text_file"');
  });

  it("shortens descriptions when no tool fits whole", () => {
    const model = new ScriptedChatModel([]);
    const request = "leggi il file note.txt";
    const baseMessages = [system, { role: "user" as const, content: request }];
    const whole = measureToolTokens(model, baseMessages, toChatToolDefinitions(filesystem.listTools().filter((tool) => tool.name === "read_text_file")));

    const selection = selectToolsWithinBudget({ model, tools: filesystem.listTools(), baseMessages, request, maxToolTokens: whole - 20 });

    expect(selection.descriptionsShortened).toBe(true);
    expect(selection.tools[0].name).toBe("read_text_file");
    expect(selection.definitions[0].function.description).toBe("Read the complete contents of a file from the file system as text.");
  });

  it("respects maxTools", () => {
    const model = new ScriptedChatModel([]);
    const baseMessages = [system, { role: "user" as const, content: "read the file" }];
    const selection = selectToolsWithinBudget({ model, tools: filesystem.listTools(), baseMessages, request: "read the file", maxToolTokens: 5000, maxTools: 3 });
    expect(selection.tools).toHaveLength(3);
  });
});

describe("runAgent on the filesystem server", () => {
  let restoreSink: ((line: string) => void) | undefined;
  const level = getLogLevel();

  afterEach(() => {
    if (restoreSink !== undefined) setLogSink(restoreSink);
    restoreSink = undefined;
    setLogLevel(level);
  });

  it.each([["leggi il file note.txt"], ["read the file note.txt"]])("reads note.txt for %j", async (task) => {
    const lines: string[] = [];
    restoreSink = setLogSink((line) => lines.push(line));
    setLogLevel(LogLevel.Debug);

    const notePath = join(filesystem.root, "note.txt");
    writeFileSync(notePath, "Comprare il caffè ☕ e le arance 🍊 perché è lunedì.\n");
    const model = new ScriptedChatModel([
      (prompt) => {
        // The model reads the allowed directory from the task in a real run; here the script writes it.
        expect(prompt).toContain('"name": "read_text_file"');
        return `<tool_call>\n{"name": "read_text_file", "arguments": {"path": ${JSON.stringify(notePath)}}}\n</tool_call>`;
      },
      "La nota dice di comprare il caffè ☕ e le arance 🍊.",
    ]);
    const events: AgentEvent[] = [];

    const result = await runAgent({ task, model, host: filesystem, onEvent: (event) => events.push(event) });

    expect(result.finishReason).toBe("stop");
    expect(result.toolNames).toContain("read_text_file");
    expect(result.toolNames.length).toBeLessThan(14);
    const toolResult = events.find((event) => event.type === "tool_result");
    expect(toolResult).toMatchObject({ name: "read_text_file", isError: false });
    expect(toolResult?.type === "tool_result" && toolResult.content).toBe("Comprare il caffè ☕ e le arance 🍊 perché è lunedì.\n");

    // The debug log names what was left out of the prompt.
    const selectionLine = lines.find((line) => line.includes("left out:"));
    expect(selectionLine).toBeDefined();
    expect(selectionLine).toMatch(/tools: \d+ of 14 fit in \d+ tokens/);
    const firstPrompt = model.calls[0].prompt;
    for (const name of selectionLine!.split("left out: ")[1].split(", ")) {
      expect(firstPrompt).not.toContain(`"name": "${name}"`);
    }
    // Tools and output reserve stay inside the window.
    expect(model.countTokens(firstPrompt) + 512).toBeLessThanOrEqual(4096);
  });

  it("sends a filesystem error back to the model", async () => {
    const missing = join(filesystem.root, "manca.txt");
    const model = new ScriptedChatModel([
      `<tool_call>\n{"name": "read_text_file", "arguments": {"path": ${JSON.stringify(missing)}}}\n</tool_call>`,
      "Il file manca.txt non esiste.",
    ]);
    const events: AgentEvent[] = [];

    const result = await runAgent({ task: "leggi manca.txt", model, host: filesystem, onEvent: (event) => events.push(event) });

    expect(result.finishReason).toBe("stop");
    const toolResult = events.find((event) => event.type === "tool_result");
    expect(toolResult).toMatchObject({ isError: true });
    expect(toolResult?.type === "tool_result" && toolResult.content).toContain("ENOENT");
  });
});
