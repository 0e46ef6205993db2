// `nesso-mcp doctor`: checks each piece a run needs and prints one verdict line per check, with
// what to do when it fails. Exits 1 when anything is broken.

import { buildModelSpec, ChatTemplate, readCheckpointTensors, resolveModelConfig, TextTokenizer } from "../engine/index.js";
import { readModelJson } from "../engine/tokenizer.js";
import { resolveModelReference } from "../hub/index.js";
import { Host, loadConfig } from "../host/index.js";
import { toChatToolDefinition } from "../tool-calling/tool-definitions.js";
import { countOf } from "./display.js";
import { formatJinjaJson } from "./jinja-json.js";
import { commonOptions, commonOptionsHelp, hostOptions, hostOptionsHelp, parseCommand } from "./options.js";

const help = `Usage: nesso-mcp doctor [options]

Checks Node.js, the native addon, the model (config, tensor shapes, tokenizer, chat template),
every server of mcp.json and the size of their tool schemas against the context window.

  --model DIR|REPO      Model to check (default mlx-community/nesso-0.4B-agentic-mlx from the cache)
  --revision REV        Revision of a repo id (default main)
${hostOptionsHelp}
${commonOptionsHelp}
`;

type Verdict = "ok" | "warn" | "fail";

interface Check {
  verdict: Verdict;
  name: string;
  detail: string;
  /** What to do about a warning or failure. */
  fix?: string;
}

const minimumNode = [20, 17] as const;

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand("doctor", argv, { ...commonOptions, ...hostOptions, model: { type: "string" }, revision: { type: "string" } });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const checks: Check[] = [];
  const report = (check: Check) => {
    checks.push(check);
    const label = { ok: "ok  ", warn: "warn", fail: "FAIL" }[check.verdict];
    process.stdout.write(`[${label}] ${check.name}: ${check.detail}\n`);
    if (check.fix && check.verdict !== "ok") process.stdout.write(`       → ${check.fix}\n`);
  };

  report(checkNode());
  report(await checkAddon());
  const model = await checkModel(values.model, values.revision);
  for (const check of model.checks) report(check);
  for (const check of await checkServers(values.config, model.tokenizer, model.contextSize ?? 4096)) report(check);

  const failed = checks.filter((check) => check.verdict === "fail").length;
  const warned = checks.filter((check) => check.verdict === "warn").length;
  process.stdout.write(`\n${failed === 0 ? "All checks passed" : `${failed} check(s) failed`}${warned > 0 ? `, ${warned} warning(s)` : ""}.\n`);
  return failed === 0 ? 0 : 1;
}

function checkNode(): Check {
  const [major, minor] = process.versions.node.split(".").map(Number);
  const good = major > minimumNode[0] || (major === minimumNode[0] && minor >= minimumNode[1]);
  return good
    ? { verdict: "ok", name: "Node.js", detail: process.versions.node }
    : { verdict: "fail", name: "Node.js", detail: `${process.versions.node} is older than ${minimumNode.join(".")}`, fix: "install Node.js 20.17 or newer" };
}

async function checkAddon(): Promise<Check> {
  try {
    const { loadNativeAddon } = await import("../engine/native.js");
    const addon = loadNativeAddon();
    return { verdict: "ok", name: "native addon", detail: `loaded, SIMD path ${addon.simdPath()}, ${addon.physicalCores()} physical cores` };
  } catch (error) {
    return { verdict: "fail", name: "native addon", detail: (error as Error).message, fix: "reinstall the package (npm install builds the addon; it needs cmake and a C++17 compiler)" };
  }
}

async function checkModel(reference: string | undefined, revision: string | undefined): Promise<{ checks: Check[]; tokenizer?: TextTokenizer; contextSize?: number }> {
  const checks: Check[] = [];
  let dir: string;
  try {
    dir = (await resolveModelReference(reference, { revision })).dir;
    checks.push({ verdict: "ok", name: "model", detail: dir });
  } catch (error) {
    const pull = (error as { pullCommand?: string }).pullCommand;
    checks.push({ verdict: "fail", name: "model", detail: (error as Error).message, fix: pull ? `run: ${pull}` : "pass --model with a model directory" });
    return { checks };
  }

  let config;
  try {
    config = resolveModelConfig(await readModelJson(dir, "config.json"));
    checks.push({
      verdict: "ok",
      name: "model config",
      detail: `${config.nLayers} layers, hidden ${config.dim}, ${config.nHeads}/${config.nKvHeads} heads, context ${config.maxContextSize}`,
    });
  } catch (error) {
    checks.push({ verdict: "fail", name: "model config", detail: (error as Error).message, fix: "re-download the model (nesso-mcp pull) or fix config.json" });
    return { checks };
  }

  let tokenizer: TextTokenizer | undefined;
  try {
    tokenizer = await TextTokenizer.load(dir);
    await ChatTemplate.load(dir, tokenizer.config);
    checks.push({ verdict: "ok", name: "tokenizer and chat template", detail: `${tokenizer.vocabSize} tokens` });
  } catch (error) {
    checks.push({ verdict: "fail", name: "tokenizer and chat template", detail: (error as Error).message, fix: "re-download the model (nesso-mcp pull)" });
  }

  try {
    const tensors = await readCheckpointTensors(dir);
    const spec = buildModelSpec(config, tensors, { tokenizerVocabSize: tokenizer?.vocabSize ?? config.configVocabSize });
    const bytes = spec.tensors.reduce((sum, tensor) => sum + tensor.byteLength, 0);
    checks.push({ verdict: "ok", name: "weights", detail: `${spec.tensors.length} tensors in ${spec.files.length} file(s), ${(bytes / 2 ** 20).toFixed(0)} MiB` });
  } catch (error) {
    checks.push({ verdict: "fail", name: "weights", detail: (error as Error).message, fix: "re-download the model (nesso-mcp pull)" });
  }
  return { checks, tokenizer, contextSize: config.maxContextSize };
}

async function checkServers(configPath: string | undefined, tokenizer: TextTokenizer | undefined, window: number): Promise<Check[]> {
  let config;
  try {
    config = loadConfig({ configPath });
  } catch (error) {
    return [{ verdict: "fail", name: "mcp.json", detail: (error as Error).message, fix: "fix the file at the path shown" }];
  }
  if (config.path === undefined) {
    return [{ verdict: "warn", name: "mcp.json", detail: "not found in ./mcp.json or the user config directory", fix: "create mcp.json (see the README) to give the model tools" }];
  }
  const checks: Check[] = [{ verdict: "ok", name: "mcp.json", detail: `${config.path}, ${config.servers.length} server(s)` }];
  const host = new Host(config, { startTimeoutMs: 60_000, restart: { maxAttempts: 0 } });
  try {
    const statuses = await host.start();
    for (const status of statuses) {
      if (status.state === "ready") {
        checks.push({ verdict: "ok", name: `server ${status.name}`, detail: `${countOf(status.toolCount, "tool")} over ${status.transport}` });
      } else if (status.state === "disabled") {
        checks.push({ verdict: "ok", name: `server ${status.name}`, detail: "disabled in mcp.json" });
      } else {
        const tail = status.stderrTail?.length ? ` (stderr: ${status.stderrTail.slice(-3).join(" | ")})` : "";
        checks.push({ verdict: "fail", name: `server ${status.name}`, detail: `${status.error ?? status.state}${tail}`, fix: "check its command, args and env in mcp.json; run the command by hand to see its output" });
      }
    }
    const count = tokenizer ? (text: string) => tokenizer.encode(text).length : (text: string) => Math.ceil(text.length / 4);
    const total = host.listTools().reduce((sum, tool) => sum + count(formatJinjaJson(toChatToolDefinition(tool)) + "\n"), 0);
    const verdict: Verdict = total > window / 2 ? "warn" : "ok";
    checks.push({
      verdict,
      name: "tool schemas",
      detail: `${total} tokens for ${countOf(host.listTools().length, "tool")}, ${((100 * total) / window).toFixed(0)}% of a ${window}-token window`,
      fix: "the agent selects the most relevant tools per request; use includeTools/excludeTools in mcp.json to offer fewer",
    });
  } finally {
    await host.close();
  }
  return checks;
}
