// Measures the time to first token for a new 30-token user message after a system turn that
// carries the filesystem server's tools, on a random-weight checkpoint with Nesso-0.4B's exact
// shapes. There are three cases:
//
//   cold    A new process with an empty prompt cache evaluates the whole prompt.
//   memory  The same session gets a new user message, so the in-memory prefix covers the system turn.
//   disk    A new process restores the system turn from the file that the cold run wrote.
//
// Each repetition uses a fresh cache directory: one child process measures cold then memory, and a
// second child process measures disk. Model loading is not part of any figure.
//
//   node --import tsx bench/prompt-cache.ts [--runs 3] [--threads N] [--json FILE]

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { EngineChatModel } from "../src/engine/chat-model.js";
import { Model } from "../src/engine/model.js";
import { loadNativeAddon } from "../src/engine/native.js";
import { systemTurnLength } from "../src/engine/prompt-cache.js";
import type { ChatMessage, ChatToolDefinition, FinishRecord } from "../src/engine/types.js";
import type { RegisteredTool } from "../src/host/types.js";
import { toChatToolDefinitions } from "../src/tool-calling/tool-definitions.js";
import { cachedCheckpoint, nessoShape } from "../test/fixtures/checkpoint.js";
import { median, parseBenchArgs } from "./measure.js";

const scriptPath = fileURLToPath(import.meta.url);
const filesystemServer = fileURLToPath(new URL("../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", import.meta.url));

const systemPrompt = "Sei un assistente che lavora sui file dell'utente. Usa gli strumenti quando servono e rispondi nella lingua della domanda.";
const userTokenCount = 30;

/** Inputs of each child process: the model, the tools and the three user messages. */
interface Scenario {
  model: string;
  cacheDir: string;
  threads: number;
  tools: ChatToolDefinition[];
  /** Messages for the cold, memory and disk measurements, each userTokenCount tokens long. */
  users: { cold: string; memory: string; disk: string };
}

/** One time-to-first-token measurement. */
interface FirstToken {
  ms: number;
  promptTokens: number;
  reusedTokens: number;
  promptCacheTokens: number;
}

interface ChildReport {
  measurements: Record<string, FirstToken>;
  systemTurnTokens: number;
  loadMs: number;
  /** Time to finish writing the cache file after the cold generation (cold child only). */
  cacheWriteMs?: number;
  cacheFileBytes?: number;
}

const { values } = parseBenchArgs(
  {
    runs: { type: "string", default: "3" },
    threads: { type: "string" },
    json: { type: "string" },
    child: { type: "string" },
    scenario: { type: "string" },
  },
  "Usage: npm run bench:prompt-cache -- [--runs 3] [--threads N] [--json FILE]",
);

function messagesFor(user: string): ChatMessage[] {
  return [
    { role: "system", content: systemPrompt },
    { role: "user", content: user },
  ];
}

/** Generates one token of a new user message and returns the time until it arrived. */
async function firstToken(chat: EngineChatModel, tools: ChatToolDefinition[], user: string): Promise<FirstToken> {
  const prompt = chat.renderChat(messagesFor(user), { tools });
  const start = performance.now();
  let ms = NaN;
  let finish: FinishRecord | undefined;
  for await (const record of chat.generate(prompt, { maxTokens: 1 })) {
    if (record.kind === "token" && Number.isNaN(ms)) ms = performance.now() - start;
    if (record.kind === "finish") finish = record;
  }
  if (finish === undefined || Number.isNaN(ms)) throw new Error("bench: the generation produced no token");
  return { ms, promptTokens: finish.promptTokens, reusedTokens: finish.reusedTokens, promptCacheTokens: finish.promptCacheTokens ?? 0 };
}

/** Child process: measures one phase and prints a ChildReport as one JSON line. */
async function runChild(phase: string, scenario: Scenario): Promise<void> {
  const loadStart = performance.now();
  const model = await Model.load(scenario.model, { threads: scenario.threads, promptCache: { dir: scenario.cacheDir } });
  const loadMs = performance.now() - loadStart;
  const chat = new EngineChatModel(model);
  const systemTurnTokens = systemTurnLength(model.encode(chat.renderChat(messagesFor(scenario.users.cold), { tools: scenario.tools })), model.textTokenizer);
  const report: ChildReport = { measurements: {}, systemTurnTokens, loadMs };

  if (phase === "cold") {
    report.measurements.cold = await firstToken(chat, scenario.tools, scenario.users.cold);
    const writeStart = performance.now();
    await model.promptCache!.flush();
    report.cacheWriteMs = performance.now() - writeStart;
    report.measurements.memory = await firstToken(chat, scenario.tools, scenario.users.memory);
    const files = readdirSync(scenario.cacheDir).filter((name) => name.endsWith(".nkv"));
    if (files.length !== 1) throw new Error(`bench: expected one prompt cache file after the cold run, found ${files.length}`);
    report.cacheFileBytes = statSync(join(scenario.cacheDir, files[0])).size;
    if (report.measurements.cold.promptCacheTokens !== 0) throw new Error("bench: the cold run found a prompt cache entry; the cache directory was not fresh");
  } else {
    report.measurements.disk = await firstToken(chat, scenario.tools, scenario.users.disk);
    if (report.measurements.disk.promptCacheTokens !== systemTurnTokens) {
      throw new Error(`bench: the disk run restored ${report.measurements.disk.promptCacheTokens} tokens instead of the ${systemTurnTokens}-token system turn`);
    }
  }
  chat.dispose();
  model.dispose();
  process.stdout.write(JSON.stringify(report) + "\n");
}

/** Lists the filesystem server's tools over stdio and converts them as the host does. */
async function filesystemTools(root: string): Promise<ChatToolDefinition[]> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [filesystemServer, root], stderr: "ignore" });
  const client = new Client({ name: "nesso-mcp-bench", version: "0.0.0" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    const registered: RegisteredTool[] = tools.map((tool) => ({
      name: tool.name,
      server: "filesystem",
      originalName: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchema: tool.inputSchema as Record<string, unknown>,
      annotations: tool.annotations,
    }));
    return toChatToolDefinitions(registered);
  } finally {
    await client.close();
  }
}

/** Cuts `text` to a message that encodes to exactly `count` tokens. */
function messageOfTokens(model: Model, text: string, count: number): string {
  const ids = model.encode(text);
  for (let cut = count; cut <= ids.length; cut++) {
    const candidate = model.decode(ids.slice(0, cut)).trim();
    if (model.encode(candidate).length === count) return candidate;
  }
  throw new Error(`bench: cannot cut "${text.slice(0, 40)}…" to ${count} tokens`);
}

function runChildProcess(phase: string, scenarioPath: string): Promise<ChildReport> {
  const args = ["--import", "tsx", scriptPath, "--child", phase, "--scenario", scenarioPath];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = output.trim().split("\n").pop() ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        reject(new Error(`bench: the ${phase} child exited with code ${code}; its output was: ${output.slice(-500)}`));
        return;
      }
      resolve(JSON.parse(line) as ChildReport);
    });
  });
}

async function main(): Promise<void> {
  const runs = Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`bench: --runs must be an integer >= 1, got "${values.runs}"`);
  const threads = values.threads === undefined ? loadNativeAddon().physicalCores() : Number(values.threads);
  if (!Number.isSafeInteger(threads) || threads < 1) throw new Error(`bench: --threads must be an integer >= 1, got "${values.threads}"`);
  const log = (line: string) => process.stdout.write(line + "\n");

  const checkpoint = cachedCheckpoint({ name: "nesso-bf16-s1", shape: nessoShape, dtype: "BF16", seed: 1 });
  const workDir = mkdtempSync(join(tmpdir(), "nesso-bench-prompt-cache-"));
  try {
    const tools = await filesystemTools(workDir);
    // This model only sizes the messages with its tokenizer, and it is disposed before the children run.
    const sizing = await Model.load(checkpoint, { threads: 1 });
    const users = {
      cold: messageOfTokens(sizing, "Leggi il file «note di viaggio.md» nella cartella documenti e dimmi quante righe contengono la parola città, poi riassumi il contenuto in tre frasi brevi e chiare per favore.", userTokenCount),
      memory: messageOfTokens(sizing, "Please list every directory under the project root, sorted by size, and tell me which ones contain Markdown files that mention the word perché or the word café anywhere.", userTokenCount),
      disk: messageOfTokens(sizing, "Cerca tutti i file JSON modificati di recente, controlla che siano validi e scrivi un breve rapporto in italiano con gli errori trovati e le righe esatte da correggere.", userTokenCount),
    };
    sizing.dispose();

    const loadBefore = loadavg()[0];
    const reports: ChildReport[] = [];
    for (let run = 0; run < runs; run++) {
      const cacheDir = join(workDir, `cache-${run}`);
      const scenarioPath = join(workDir, `scenario-${run}.json`);
      const scenario: Scenario = { model: checkpoint, cacheDir, threads, tools, users };
      writeFileSync(scenarioPath, JSON.stringify(scenario));
      const cold = await runChildProcess("cold", scenarioPath);
      const disk = await runChildProcess("disk", scenarioPath);
      reports.push({ ...cold, measurements: { ...cold.measurements, ...disk.measurements } });
      const latest = reports.at(-1)!.measurements;
      log(`run ${run + 1}: cold ${latest.cold.ms.toFixed(0)} ms, memory ${latest.memory.ms.toFixed(0)} ms, disk ${latest.disk.ms.toFixed(0)} ms`);
      rmSync(cacheDir, { recursive: true, force: true });
    }

    const medianOf = (phase: string) => median(reports.map((report) => report.measurements[phase].ms));
    const rangeOf = (phase: string) => {
      const times = reports.map((report) => report.measurements[phase].ms);
      return `${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)}`;
    };
    const cold = medianOf("cold");
    const first = reports[0];
    log("");
    log(`machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; SIMD ${loadNativeAddon().simdPath()}`);
    log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`);
    log(`${threads} threads, ${tools.length} filesystem tools, system turn ${first.systemTurnTokens} tokens, user message ${userTokenCount} tokens, median of ${runs} runs`);
    log(`cache file ${(first.cacheFileBytes! / 2 ** 20).toFixed(1)} MiB, written in ${median(reports.map((report) => report.cacheWriteMs!)).toFixed(0)} ms after the cold run (median)`);
    log("");
    log("| prefix source | prompt tokens | evaluated tokens | time to first token ms (min-max) | vs cold |");
    log("|---|---|---|---|---|");
    for (const phase of ["cold", "memory", "disk"]) {
      const sample = first.measurements[phase];
      const ms = medianOf(phase);
      log(`| ${phase} | ${sample.promptTokens} | ${sample.promptTokens - sample.reusedTokens} | ${ms.toFixed(0)} (${rangeOf(phase)}) | ${((100 * ms) / cold).toFixed(1)}% |`);
    }
    if (values.json) writeFileSync(values.json, JSON.stringify({ threads, runs, tools: tools.length, reports }, null, 2));
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (values.child !== undefined) {
  const scenario = JSON.parse(readFileSync(values.scenario!, "utf8")) as Scenario;
  await runChild(values.child, scenario);
} else {
  await main();
}
