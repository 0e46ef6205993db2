// Shows an agent run on the terminal: the answer streams to stdout, each tool call and a one-line
// summary of its result go to stderr (so `nesso-mcp run … > answer.txt` keeps only the answer).

import type { AgentEvent } from "../agent/events.js";

const maxArgumentChars = 160;
const maxResultChars = 120;

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export interface RunDisplay {
  onEvent(event: AgentEvent): void;
  /** Ends the answer line if text was streamed. */
  finish(): void;
}

export function createRunDisplay(stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): RunDisplay {
  let answerOpen = false;
  const closeAnswer = () => {
    if (answerOpen) stdout.write("\n");
    answerOpen = false;
  };
  return {
    onEvent(event) {
      switch (event.type) {
        case "text":
          stdout.write(event.text);
          answerOpen = event.text !== "" || answerOpen;
          break;
        case "tool_call":
          closeAnswer();
          stderr.write(`→ ${event.call.name} ${oneLine(JSON.stringify(event.call.arguments), maxArgumentChars)}\n`);
          break;
        case "tool_result": {
          const status = event.isError ? "error" : "ok";
          const cut = event.truncated ? ", truncated" : "";
          stderr.write(`← ${event.name} ${status} (${event.durationMs} ms${cut}): ${oneLine(event.content, maxResultChars)}\n`);
          break;
        }
        case "error":
          closeAnswer();
          stderr.write(`! ${event.kind}: ${oneLine(event.message, 300)}\n`);
          break;
        case "context":
          stderr.write(`(left ${event.droppedMessages} old message(s) out of the prompt to fit ${event.contextSize} tokens)\n`);
          break;
        case "final":
          closeAnswer();
          // The answer itself was streamed, and other endings were already shown by their error event.
          if (event.finishReason === "length") stderr.write("(the answer reached the output token limit)\n");
          break;
      }
    },
    finish: closeAnswer,
  };
}

/** "1 tool", "2 tools": a count with its noun in the right number (English plural in -s). */
export function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
