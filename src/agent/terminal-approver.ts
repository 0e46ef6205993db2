// The approval prompt for an interactive terminal: shows the tool and its arguments and reads one
// line, "o" (allow once), "r" (allow for this run) or anything else (deny).

import { createInterface, type Interface } from "node:readline";

import type { ApprovalDecision, ApprovalRequest, Approver } from "./approval.js";

export interface TerminalApprover {
  approve: Approver;
  /** Stops reading the input; pending and later questions are answered "deny". Safe to call twice. */
  close(): void;
}

/** Maximum characters of arguments shown before the cut, so a large write_file does not flood the terminal. */
const maxShownArgumentChars = 600;

const onceAnswers = new Set(["o", "once", "y", "yes", "s", "si", "sì", "1"]);
const runAnswers = new Set(["r", "run", "a", "always", "sempre", "2"]);

/** Maps one typed line to a decision; unknown answers deny, because denying is the safe default. */
export function parseApprovalAnswer(line: string): ApprovalDecision {
  const answer = line.trim().toLowerCase();
  if (onceAnswers.has(answer)) return "once";
  if (runAnswers.has(answer)) return "run";
  return "deny";
}

function describeRequest(request: ApprovalRequest): string {
  const { tool } = request;
  let args = JSON.stringify(request.arguments, null, 2);
  if (args.length > maxShownArgumentChars) {
    args = `${Array.from(args).slice(0, maxShownArgumentChars).join("")}… (${args.length} characters in total)`;
  }
  const hints = [tool.annotations?.destructiveHint === true ? "destructive" : "", tool.annotations?.openWorldHint === true ? "reaches outside this machine" : ""]
    .filter((hint) => hint !== "")
    .join(", ");
  const server = tool.server === "" ? "" : ` on server ${tool.server}`;
  return `\nThe model wants to call ${tool.name}${server}${hints === "" ? "" : ` (${hints})`} with:\n${args}\nAllow? [o]nce, for this [r]un, [d]eny (default deny): `;
}

/** Creates an approver that prompts on `output` and reads answers from `input`, one line each. */
export function createTerminalApprover(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): TerminalApprover {
  const lines: string[] = [];
  const waiting: Array<(line: string | null) => void> = [];
  let closed = false;

  const reader: Interface = createInterface({ input, terminal: false, crlfDelay: Infinity });
  reader.on("line", (line) => {
    const next = waiting.shift();
    if (next !== undefined) next(line);
    else lines.push(line);
  });
  reader.on("close", () => {
    closed = true;
    for (const next of waiting.splice(0)) next(null);
  });

  const readLine = (signal?: AbortSignal): Promise<string | null> => {
    const buffered = lines.shift();
    if (buffered !== undefined) return Promise.resolve(buffered);
    if (closed) return Promise.resolve(null);

    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = waiting.indexOf(deliver);
        if (index !== -1) waiting.splice(index, 1);
        reject(signal?.reason);
      };
      const deliver = (line: string | null) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(line);
      };
      waiting.push(deliver);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  return {
    async approve(request, signal) {
      signal?.throwIfAborted();
      output.write(describeRequest(request));
      const line = await readLine(signal);
      // End of input (Ctrl-D, a closed pipe) denies, like an empty answer.
      const decision = line === null ? "deny" : parseApprovalAnswer(line);
      if (line === null) output.write("\n");
      return decision;
    },
    close() {
      if (closed) return;
      closed = true;
      reader.close();
    },
  };
}
