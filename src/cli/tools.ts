// `nesso-mcp tools`: the connected servers and their tools, with the token cost of each schema in
// the model's prompt and the total against the context window.

import { TextTokenizer } from "../engine/index.js";
import { resolveModelReference } from "../hub/index.js";
import { toChatToolDefinition } from "../tool-calling/tool-definitions.js";
import { countOf } from "./display.js";
import { createLogger } from "../logger.js";
import { commonOptions, commonOptionsHelp, hostOptions, hostOptionsHelp, parseCommand } from "./options.js";
import { startHost } from "./start-host.js";
import { formatJinjaJson } from "./jinja-json.js";

const log = createLogger("cli");

const help = `Usage: nesso-mcp tools [options]

Connects the servers of mcp.json and lists each tool with the tokens its schema costs in Nesso's
prompt (counted with the model's tokenizer when the model is available, else estimated as
characters / 4).

  --model DIR|REPO      Model whose tokenizer counts the tokens (default: the Nesso repo, from the cache)
  --context-size N      Window the total is compared with (default 4096)
${hostOptionsHelp}
  --json                Print the list as JSON on stdout
${commonOptionsHelp}
`;

export async function toolsCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand("tools", argv, {
    ...commonOptions,
    ...hostOptions,
    model: { type: "string" },
    "context-size": { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const contextSize = Number(values["context-size"] ?? 4096);
  const countTokens = await tokenCounter(values.model);
  const host = await startHost(values.config);
  try {
    const statuses = host.servers();
    const tools = host.listTools();
    const rows = tools.map((tool) => {
      // The chat template writes each tool as one tojson line inside <tools>…</tools>.
      const line = formatJinjaJson(toChatToolDefinition(tool)) + "\n";
      return { name: tool.name, server: tool.server, tokens: countTokens.count(line), readOnly: tool.annotations?.readOnlyHint === true };
    });
    const total = rows.reduce((sum, row) => sum + row.tokens, 0);

    if (values.json) {
      process.stdout.write(JSON.stringify({ servers: statuses, tools: rows, totalTokens: total, contextSize, tokenCount: countTokens.kind }, null, 2) + "\n");
      return statuses.some((status) => status.state === "failed") ? 1 : 0;
    }

    for (const status of statuses) {
      const state = status.state === "ready" ? countOf(status.toolCount, "tool") : status.state;
      process.stdout.write(`${status.name} (${status.transport}): ${state}${status.error ? ` — ${status.error.split("\n")[0]}` : ""}\n`);
      for (const row of rows.filter((candidate) => candidate.server === status.name)) {
        process.stdout.write(`  ${row.name.padEnd(32)} ${String(row.tokens).padStart(6)} tokens${row.readOnly ? "  read-only" : ""}\n`);
      }
    }
    const share = ((100 * total) / contextSize).toFixed(1);
    const note = countTokens.kind === "estimate" ? " (estimated as characters / 4: model not found)" : "";
    process.stdout.write(`\n${countOf(rows.length, "tool")}, ${total} tokens of schemas = ${share}% of the ${contextSize}-token window${note}\n`);
    if (total > contextSize / 2) {
      process.stdout.write("The agent offers each request only the most relevant tools that fit its budget.\n");
    }
    return statuses.some((status) => status.state === "failed") ? 1 : 0;
  } finally {
    await host.close();
  }
}

interface TokenCounter {
  kind: "tokenizer" | "estimate";
  count(text: string): number;
}

/** Uses the model's tokenizer when the model can be found (no weights are loaded), else chars / 4. */
async function tokenCounter(modelReference: string | undefined): Promise<TokenCounter> {
  try {
    const reference = await resolveModelReference(modelReference);
    const tokenizer = await TextTokenizer.load(reference.dir);
    return { kind: "tokenizer", count: (text) => tokenizer.encode(text).length };
  } catch (error) {
    log.debug(`token counts are estimates: ${(error as Error).message}`);
    return { kind: "estimate", count: (text) => Math.ceil(text.length / 4) };
  }
}
