// `nesso-mcp run "task"`: one task, the answer streamed, tool calls shown as they happen.

import { runAgent } from "../agent/run-agent.js";
import { agentOptions, agentOptionsHelp, setUpAgent } from "./agent-setup.js";
import { createRunDisplay } from "./display.js";
import { commonOptions, commonOptionsHelp, hostOptions, hostOptionsHelp, modelOptions, modelOptionsHelp, parseCommand } from "./options.js";
import { UsageError } from "./report-error.js";

const help = `Usage: nesso-mcp run "task" [options]

Runs one task with the local model and the tools of the servers in mcp.json. The answer streams
to stdout; each tool call and a one-line result go to stderr. Ctrl-C stops the run.

${modelOptionsHelp}
${hostOptionsHelp}
${agentOptionsHelp}
${commonOptionsHelp}
`;

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("run", argv, { ...commonOptions, ...modelOptions, ...hostOptions, ...agentOptions }, true);
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const task = positionals.join(" ").trim();
  if (task === "") throw new UsageError('run needs a task, e.g. nesso-mcp run "list the files in this folder"');

  const setup = await setUpAgent(values);
  const abort = new AbortController();
  const onInterrupt = () => abort.abort(new Error("the run was interrupted"));
  process.once("SIGINT", onInterrupt);
  const display = createRunDisplay();
  try {
    const result = await runAgent({ ...setup.options, task, signal: abort.signal, onEvent: display.onEvent });
    display.finish();
    return result.finishReason === "stop" || result.finishReason === "length" ? 0 : 1;
  } finally {
    process.off("SIGINT", onInterrupt);
    await setup.close();
  }
}
