// Starts `nesso-mcp serve` as a subprocess through the real CLI entry, as Claude Desktop or Claude
// Code would, and stops it by its process id.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root, where `node --import tsx` resolves tsx from. */
export const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The CLI entry point run through tsx. */
export const cliEntry = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** `node` arguments that run `nesso-mcp serve <args>`. */
export function serveArguments(args: string[]): string[] {
  return ["--import", "tsx", cliEntry, "serve", ...args];
}

export interface HttpServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Sends SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string | null>;
}

/** Starts `serve --http --port 0 <args>` and resolves once it prints its URL on stderr. */
export function startHttpServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HttpServeProcess> {
  const child = spawn(process.execPath, serveArguments(["--http", "--port", "0", ...args]), {
    cwd: repositoryRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  const exited = new Promise<number | string | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));

  const stop = async (graceMs = 5_000): Promise<number | string | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const result = await exited;
    clearTimeout(timer);
    return result;
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`serve --http printed no URL within 30 s; stderr:\n${stderr}`));
    }, 30_000);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      const match = /nesso-mcp serving MCP at (http:\/\/\S+)/.exec(stderr);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ url: match[1], child, stderr: () => stderr, stop });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve --http exited with ${code} before printing its URL; stderr:\n${stderr}`));
    });
  });
}
