// MCP client transport over a subprocess's stdin and stdout.
//
// It differs from the SDK's StdioClientTransport where servers in the wild need it. The child gets
// the full parent environment plus the configured variables, where the SDK passes an allow-list
// of six. The child leads its own process group, so closing also ends grandchildren (npx, uvx,
// shell wrappers). Stderr is kept for error messages and stdout is decoded as a UTF-8 stream.
// JSON sent to the child escapes non-ASCII characters as \u sequences, because some servers
// mis-decode UTF-8 on stdin.

import { spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";

import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { JSONRPCMessageSchema, type JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import { isGroupAlive, signalGroup, waitForGroupExit } from "./process-group.js";
import { StderrTail } from "./stderr-tail.js";

const log = createLogger("stdio");

export interface StdioTransportOptions {
  /** Server name used in messages. */
  server: string;
  command: string;
  args?: readonly string[];
  /** Variables added to (and overriding) the host's environment. */
  env?: Readonly<Record<string, string>>;
  /** Working directory of the child (default: the host's). */
  cwd?: string;
  /** Lines of stderr kept for error messages (default 40). */
  stderrLines?: number;
  /** Maximum length of one stdout line, in characters (default 32 Mi). */
  maxLineLength?: number;
  /** Non-JSON-RPC stdout lines tolerated before the transport fails (default 20). */
  maxInvalidLines?: number;
  /** Time the process group gets to exit after stdin is closed (default 2000 ms). */
  stdinGraceMs?: number;
  /** Time the process group gets to exit after SIGTERM, before SIGKILL (default 2000 ms). */
  termGraceMs?: number;
}

/** Exit status of the child process. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type TransportState = "new" | "running" | "closing" | "closed";

/** Process groups still running, ended with SIGTERM if the host process exits without closing them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pgid: number): void {
  liveGroups.add(pgid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const group of liveGroups) {
      try {
        signalGroup(group, "SIGTERM");
      } catch {
        // The host is exiting; nothing more can be done about a group that cannot be signalled.
      }
    }
  });
}

export class StdioProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  readonly #options: StdioTransportOptions;
  readonly #stderr: StderrTail;
  readonly #decoder = new StringDecoder("utf8");
  #state: TransportState = "new";
  #child?: ChildProcess;
  #pgid?: number;
  #stdout = "";
  #stdoutEnded?: Promise<void>;
  #exit?: ProcessExit;
  #invalidLines = 0;
  #firstInvalidLine?: string;
  #failure?: NessoError;
  #terminated?: Promise<void>;

  constructor(options: StdioTransportOptions) {
    this.#options = options;
    this.#stderr = new StderrTail(options.stderrLines ?? 40);
  }

  /** Process id of the child (the leader of its process group) once started. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Exit code and signal once the child has exited. */
  get exit(): ProcessExit | undefined {
    return this.#exit;
  }

  /** The reason the transport closed itself (unusable output), if it did. */
  get failure(): NessoError | undefined {
    return this.#failure;
  }

  stderrLines(): string[] {
    return this.#stderr.lines();
  }

  /**
   * Describes why the server is gone, for error messages: the exit status, stdout lines that were
   * not JSON-RPC, and the last stderr lines.
   */
  describeFailure(): string {
    const parts: string[] = [];
    if (this.#failure !== undefined) parts.push(this.#failure.message);
    else if (this.#exit !== undefined) parts.push(formatExit(this.#exit));
    if (this.#invalidLines > 0 && this.#failure === undefined) {
      parts.push(`it wrote ${this.#invalidLines} stdout line(s) that are not JSON-RPC, the first: ${JSON.stringify(this.#firstInvalidLine)}`);
    }
    return parts.join("; ") + this.#stderr.format();
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new NessoError("INTERNAL", `stdio transport of server "${this.#options.server}" was started twice`);
    const { server, command, args = [], cwd } = this.#options;

    if (cwd !== undefined && !isDirectory(cwd)) {
      this.#state = "closed";
      throw new NessoError("SERVER", `server "${server}": working directory ${cwd} does not exist or is not a directory (fix "cwd" in mcp.json)`);
    }

    // NOTE: on Windows, npx and other .cmd launchers need a shell, which this spawn does not use,
    // so they fail to start. cross-spawn handles this for the SDK's transport.
    const child = spawn(command, [...args], {
      cwd,
      env: { ...process.env, ...this.#options.env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: process.platform !== "win32",
      windowsHide: true,
    });
    this.#child = child;

    await new Promise<void>((resolve, reject) => {
      child.once("spawn", () => resolve());
      child.once("error", (error: NodeJS.ErrnoException) => {
        this.#state = "closed";
        reject(describeSpawnError(server, command, error, this.#options.env?.PATH ?? process.env.PATH));
      });
    });

    this.#pgid = child.pid;
    if (this.#pgid !== undefined) trackGroup(this.#pgid);
    this.#state = "running";
    log.debug(`server "${server}" started as pid ${child.pid}: ${command} ${args.join(" ")}`);

    child.on("error", (error) => this.onerror?.(error));
    child.on("exit", (code, signal) => this.#handleExit({ code, signal }));
    child.stdin?.on("error", (error) => log.debug(`server "${server}" stdin: ${error.message}`));
    child.stderr?.on("data", (chunk: Buffer) => this.#stderr.push(chunk));
    child.stdout?.on("data", (chunk: Buffer) => this.#readStdout(chunk));
    this.#stdoutEnded = new Promise((resolve) => {
      child.stdout?.once("end", resolve);
      child.stdout?.once("error", () => resolve());
      child.stdout?.once("close", resolve);
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.#child?.stdin;
    if (this.#state !== "running" || stdin == null || stdin.destroyed) {
      throw new NessoError("SERVER", `server "${this.#options.server}" is not running${this.#exit ? ` (${formatExit(this.#exit)})` : ""}`);
    }
    const line = escapeNonAscii(JSON.stringify(message)) + "\n";
    await new Promise<void>((resolve, reject) => {
      stdin.write(line, (error) => {
        if (error == null) resolve();
        else reject(new NessoError("SERVER", `writing to server "${this.#options.server}" failed: ${error.message}`, { cause: error }));
      });
    });
  }

  /**
   * Ends the server: closes its stdin, waits for the process group to exit, then escalates to
   * SIGTERM and SIGKILL. Safe to call more than once; every call resolves when the group is gone
   * or the last wait ran out.
   */
  async close(): Promise<void> {
    if (this.#state === "new") {
      this.#state = "closed";
      this.#terminated = Promise.resolve();
      this.onclose?.();
    }
    if (this.#state === "closed" || this.#state === "closing") return this.#terminated;

    this.#state = "closing";
    this.#terminated = this.#shutDown(true).then(() => this.#finish());
    return this.#terminated;
  }

  /** Resolves once the process group has ended (after close() or an unexpected exit). */
  get terminated(): Promise<void> {
    return this.#terminated ?? Promise.resolve();
  }

  #readStdout(chunk: Buffer): void {
    this.#stdout += this.#decoder.write(chunk);
    const maxLineLength = this.#options.maxLineLength ?? 32 * 1024 * 1024;

    // Lines keep being delivered after an exit until the pipe is drained, but not after a failure.
    let newline = this.#stdout.indexOf("\n");
    while (newline !== -1 && this.#state !== "closed" && this.#failure === undefined) {
      const line = this.#stdout.slice(0, newline).replace(/\r$/, "");
      this.#stdout = this.#stdout.slice(newline + 1);
      this.#handleLine(line);
      newline = this.#stdout.indexOf("\n");
    }

    if (this.#stdout.length > maxLineLength) {
      this.#fail(`server "${this.#options.server}" wrote a stdout line longer than ${maxLineLength} characters without a newline (each MCP message must be one line)`);
    }
  }

  #handleLine(line: string): void {
    if (line.trim() === "") return;

    let message: JSONRPCMessage | undefined;
    try {
      const parsed = JSONRPCMessageSchema.safeParse(JSON.parse(line));
      if (parsed.success) message = parsed.data;
    } catch {
      // not JSON; counted below
    }
    if (message !== undefined) {
      this.onmessage?.(message);
      return;
    }

    this.#invalidLines++;
    const sample = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    this.#firstInvalidLine ??= sample;
    const limit = this.#options.maxInvalidLines ?? 20;
    if (this.#invalidLines > limit) {
      this.#fail(
        `server "${this.#options.server}" wrote ${this.#invalidLines} stdout lines that are not JSON-RPC messages, ` +
          `the first: ${JSON.stringify(this.#firstInvalidLine)} (stdout must carry only MCP messages; a server must log to stderr)`,
      );
      return;
    }
    this.onerror?.(new NessoError("SERVER", `server "${this.#options.server}" wrote a stdout line that is not a JSON-RPC message: ${JSON.stringify(sample)}`));
  }

  /** Closes the transport because the server's output cannot be used. */
  #fail(message: string): void {
    if (this.#state !== "running") return;
    this.#failure = new NessoError("SERVER", message);
    this.#stdout = "";
    this.onerror?.(this.#failure);

    // Report the close at once so that pending requests fail now, then end the process group.
    this.#state = "closing";
    this.#terminated = (async () => {
      this.#finish();
      await this.#shutDown(false);
      this.#untrack();
    })();
  }

  #handleExit(exit: ProcessExit): void {
    this.#exit = exit;
    if (this.#state !== "running") return; // close() is in charge

    // Unexpected exit: deliver what is still in the pipe, then report the close at once and end
    // any grandchildren left in the group in the background.
    this.#state = "closing";
    log.warn(`server "${this.#options.server}" ${formatExit(exit)}${this.#stderr.format(5)}`);
    // A grandchild may still hold stdout open, so the wait for the end of the pipe is bounded.
    const drained = Promise.race([this.#stdoutEnded, delay(1000)]);
    this.#terminated = drained.then(async () => {
      this.#finish();
      await this.#shutDown(false);
      this.#untrack();
    });
  }

  /** Escalates stdin end → SIGTERM → SIGKILL until the process group has no running process. Never rejects. */
  async #shutDown(closeStdin: boolean): Promise<void> {
    try {
      await this.#escalate(closeStdin);
    } catch (error) {
      log.error(`server "${this.#options.server}": ending process group ${this.#pgid} failed`, error);
    }
  }

  async #escalate(closeStdin: boolean): Promise<void> {
    const pgid = this.#pgid;
    if (pgid === undefined) return;
    const stdinGraceMs = this.#options.stdinGraceMs ?? 2000;
    const termGraceMs = this.#options.termGraceMs ?? 2000;

    if (closeStdin) {
      this.#child?.stdin?.end();
      if (await waitForGroupExit(pgid, stdinGraceMs)) return;
    } else if (!isGroupAlive(pgid)) {
      return;
    }

    log.debug(`server "${this.#options.server}": sending SIGTERM to process group ${pgid}`);
    if (!signalGroup(pgid, "SIGTERM")) return;
    if (await waitForGroupExit(pgid, termGraceMs)) return;

    log.warn(`server "${this.#options.server}" did not exit within ${termGraceMs} ms of SIGTERM; sending SIGKILL to process group ${pgid}`);
    if (!signalGroup(pgid, "SIGKILL")) return;
    if (!(await waitForGroupExit(pgid, 1000))) {
      log.error(`server "${this.#options.server}": process group ${pgid} is still running after SIGKILL`);
    }
  }

  /** Marks the transport closed, releases the pipes and fires onclose once. */
  #finish(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#untrack();
    const child = this.#child;
    child?.stdin?.destroy();
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    this.onclose?.();
  }

  #untrack(): void {
    if (this.#pgid !== undefined && !isGroupAlive(this.#pgid)) liveGroups.delete(this.#pgid);
  }
}

/** Escapes every non-ASCII UTF-16 code unit of a JSON text as \uXXXX; the JSON value is unchanged. */
export function escapeNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function formatExit(exit: ProcessExit): string {
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

function describeSpawnError(server: string, command: string, error: NodeJS.ErrnoException, path: string | undefined): NessoError {
  if (error.code === "ENOENT") {
    return new NessoError(
      "SERVER",
      `server "${server}": command "${command}" was not found (ENOENT); install it or fix "command" in mcp.json ` +
        `(searched PATH=${path ?? "(unset)"})`,
      { cause: error },
    );
  }
  if (error.code === "EACCES") {
    return new NessoError("SERVER", `server "${server}": command "${command}" is not executable (EACCES); check its file permissions`, { cause: error });
  }
  return new NessoError("SERVER", `server "${server}": starting "${command}" failed: ${error.message}`, { cause: error });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
