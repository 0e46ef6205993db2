// Small helpers for talking to a person on the terminal (prompts go to stderr).

import { createInterface } from "node:readline/promises";

/** True when both stdin and stderr are terminals, so a question can be asked and answered. */
export function isInteractive(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/** Asks a yes/no question on the terminal; an empty answer means `defaultAnswer`. */
export async function confirm(question: string, defaultAnswer = true): Promise<boolean> {
  const readline = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await readline.question(`${question} ${defaultAnswer ? "[Y/n]" : "[y/N]"} `)).trim().toLowerCase();
    if (answer === "") return defaultAnswer;
    return answer === "y" || answer === "yes" || answer === "s" || answer === "si" || answer === "sì";
  } finally {
    readline.close();
  }
}
