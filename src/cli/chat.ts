// `nesso-mcp chat`: an interactive conversation with the same tools as `run`. Ctrl-C during a turn
// cancels that turn; Ctrl-C (or Ctrl-D) at the prompt ends the chat.

import { createInterface } from "node:readline";
import type { ChatMessage } from "../engine/types.js";
import { runAgent } from "../agent/run-agent.js";
import { agentOptions, agentOptionsHelp, setUpAgent } from "./agent-setup.js";
import { createRunDisplay } from "./display.js";
import { commonOptions, commonOptionsHelp, hostOptions, hostOptionsHelp, modelOptions, modelOptionsHelp, parseCommand } from "./options.js";

const help = `Usage: nesso-mcp chat [options]

Chats with the local model, with the tools of the servers in mcp.json. Type a message and press
Enter. Ctrl-C cancels the current answer; Ctrl-C or Ctrl-D at the prompt quits. With piped
input, each line is one message and the chat ends after the last answer.

${modelOptionsHelp}
${hostOptionsHelp}
${agentOptionsHelp}
${commonOptionsHelp}
`;

export async function chatCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand("chat", argv, { ...commonOptions, ...modelOptions, ...hostOptions, ...agentOptions });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const setup = await setUpAgent(values);
  const readline = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY === true });
  let history: ChatMessage[] = [];
  let turn: AbortController | undefined;
  let closed = false;

  readline.on("SIGINT", () => {
    if (turn !== undefined) turn.abort(new Error("the turn was cancelled"));
    else readline.close();
  });
  // End of input (Ctrl-D, or the end of piped text) lets the running turn finish, then quits.
  readline.on("close", () => {
    closed = true;
  });

  try {
    const lines = readline[Symbol.asyncIterator]();
    for (;;) {
      if (closed) break;
      readline.setPrompt("> ");
      readline.prompt();
      const next = await lines.next();
      if (next.done) break;
      const text = next.value.trim();
      if (text === "") continue;

      const display = createRunDisplay();
      turn = new AbortController();
      try {
        const result = await runAgent({ ...setup.options, messages: history, task: text, signal: turn.signal, onEvent: display.onEvent });
        history = result.messages;
        display.finish();
      } catch (error) {
        display.finish();
        if (turn.signal.aborted) process.stderr.write("(cancelled)\n");
        else throw error;
      } finally {
        turn = undefined;
      }
    }
    if (process.stdin.isTTY === true) process.stderr.write("\n");
    return 0;
  } finally {
    readline.close();
    await setup.close();
  }
}
