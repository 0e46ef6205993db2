// mcp.json: finding the file, parsing it, validating it with zod and expanding variables.
//
// The format is Claude Desktop's `{"mcpServers": {name: {command, args, env, cwd}}}` plus
// `{url, headers, type}` entries for remote servers and a few optional keys of nesso-mcp:
// `disabled`, `includeTools`, `excludeTools`, `timeoutMs`, `approval` and `roots`.

import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";

import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import { expandVariables } from "./expand.js";

const log = createLogger("config");

/** Approval policy for a server's tools: `auto` requires approval only for tools not marked read-only. */
export type ApprovalPolicy = "auto" | "ask" | "deny";

interface ServerCommonConfig {
  /** The key of the entry in `mcpServers`. */
  name: string;
  disabled: boolean;
  /** Tool names (or `*` patterns) to expose; all tools when absent. */
  includeTools?: string[];
  /** Tool names (or `*` patterns) to hide; applied after `includeTools`. */
  excludeTools?: string[];
  /** Per-call timeout in milliseconds, reset by progress notifications. */
  timeoutMs?: number;
  approval?: ApprovalPolicy;
  /**
   * Absolute directories offered to this server as roots, replacing the host's; `false` declares
   * no roots capability. The filesystem server lets roots replace its command-line directories.
   */
  roots?: string[] | false;
}

/** A server started as a subprocess that speaks MCP over its stdin and stdout. */
export interface StdioServerConfig extends ServerCommonConfig {
  type: "stdio";
  command: string;
  args: string[];
  /** Variables added to the full environment of the host process. */
  env: Record<string, string>;
  /** Absolute working directory of the child; the host's working directory when absent. */
  cwd?: string;
}

/** A remote server reached over Streamable HTTP or the legacy HTTP+SSE transport. */
export interface HttpServerConfig extends ServerCommonConfig {
  type: "http" | "sse";
  url: string;
  headers: Record<string, string>;
  /** True when the entry gave no `type`: Streamable HTTP is tried first, then legacy SSE. */
  sseFallback: boolean;
}

export type ServerConfig = StdioServerConfig | HttpServerConfig;

export interface HostConfig {
  /** The file the configuration was read from; undefined when no file was found. */
  path?: string;
  servers: ServerConfig[];
}

const commonShape = {
  disabled: z.boolean().optional(),
  includeTools: z.array(z.string().min(1)).optional(),
  excludeTools: z.array(z.string().min(1)).optional(),
  timeoutMs: z.number().int().positive().optional(),
  approval: z.enum(["auto", "ask", "deny"]).optional(),
  roots: z.union([z.array(z.string().min(1)), z.literal(false)]).optional(),
};

const stdioEntrySchema = z.object({
  type: z.literal("stdio").optional(),
  command: z.string().min(1),
  args: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().min(1).optional(),
  ...commonShape,
});

const httpEntrySchema = z.object({
  type: z.enum(["http", "sse"]).optional(),
  url: z.string().min(1),
  headers: z.record(z.string(), z.string()).optional(),
  ...commonShape,
});

const fileSchema = z.object({
  mcpServers: z.record(z.string(), z.unknown()),
});

type StdioEntry = z.infer<typeof stdioEntrySchema>;
type HttpEntry = z.infer<typeof httpEntrySchema>;

export interface FindConfigOptions {
  /** Path given with `--config`; when set, it must exist and no other place is searched. */
  configPath?: string;
  /** Directory searched for `mcp.json` (default: process.cwd()). */
  cwd?: string;
  /** Environment used for XDG_CONFIG_HOME (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Home directory (default: os.homedir()). */
  homeDir?: string;
  /** Platform (default: process.platform); macOS also searches ~/Library/Application Support. */
  platform?: NodeJS.Platform;
}

export interface FoundConfig {
  /** The first existing file, or undefined. */
  path?: string;
  /** Every path looked at, in order. */
  searched: string[];
}

/** Lists the places mcp.json is looked for: `--config`, then ./mcp.json, then the user config directory. */
export function configSearchPaths(options: FindConfigOptions = {}): string[] {
  const cwd = options.cwd ?? process.cwd();
  if (options.configPath !== undefined) return [resolve(cwd, options.configPath)];

  const env = options.env ?? process.env;
  const home = options.homeDir ?? homedir();
  const platform = options.platform ?? process.platform;
  const xdg = env.XDG_CONFIG_HOME;
  const userConfigDir = xdg !== undefined && isAbsolute(xdg) ? xdg : join(home, ".config");

  const paths = [join(cwd, "mcp.json"), join(userConfigDir, "nesso-mcp", "mcp.json")];
  if (platform === "darwin") paths.push(join(home, "Library", "Application Support", "nesso-mcp", "mcp.json"));
  return paths;
}

/** Finds the configuration file. Throws CONFIG when an explicit `configPath` does not exist. */
export function findConfigFile(options: FindConfigOptions = {}): FoundConfig {
  const searched = configSearchPaths(options);
  for (const path of searched) {
    if (existsSync(path) && statSync(path).isFile()) return { path, searched };
  }
  if (options.configPath !== undefined) {
    throw new NessoError(
      "CONFIG",
      `config file ${searched[0]} given with --config does not exist (check the path, or omit --config to use ./mcp.json)`,
    );
  }
  return { searched };
}

export interface ParseConfigOptions {
  /** File the text came from; used in messages and to resolve a relative `cwd`. */
  path?: string;
  /** Environment for `${VAR}` expansion (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Parses, validates and expands the text of an mcp.json file. Throws CONFIG on any problem. */
export function parseConfig(text: string, options: ParseConfigOptions = {}): HostConfig {
  const source = options.path ?? "mcp.json";
  const env = options.env ?? process.env;
  const baseDir = options.path !== undefined ? dirname(resolve(options.path)) : process.cwd();

  const json = parseJson(text.replace(/^\uFEFF/, ""), source);
  const file = fileSchema.safeParse(json);
  if (!file.success) throw validationError(source, file.error.issues);

  const servers: ServerConfig[] = [];
  const issues: PathIssue[] = [];
  for (const [name, entry] of Object.entries(file.data.mcpServers)) {
    const entryPath = ["mcpServers", name];
    if (name.trim() === "") {
      issues.push({ path: entryPath, message: "server names must not be empty" });
      continue;
    }
    const parsed = parseServerEntry(name, entry, entryPath, issues);
    if (parsed !== undefined) servers.push(parsed);
  }
  if (issues.length > 0) throw validationError(source, issues);

  return { path: options.path, servers: servers.map((server) => expandServer(server, env, baseDir)) };
}

/** Finds and reads mcp.json; returns a configuration without servers when no file exists. */
export function loadConfig(options: FindConfigOptions & { env?: NodeJS.ProcessEnv } = {}): HostConfig {
  const found = findConfigFile(options);
  if (found.path === undefined) {
    log.info(`no mcp.json found (searched ${found.searched.join(", ")}); starting without servers`);
    return { servers: [] };
  }
  let text: string;
  try {
    text = readFileSync(found.path, "utf8");
  } catch (error) {
    throw new NessoError("CONFIG", `reading config file ${found.path} failed: ${(error as Error).message}`, { cause: error });
  }
  return parseConfig(text, { path: found.path, env: options.env });
}

interface PathIssue {
  path: PropertyKey[];
  message: string;
}

/** Picks the stdio or HTTP schema for one entry and collects its issues under the entry's path. */
function parseServerEntry(name: string, entry: unknown, entryPath: PropertyKey[], issues: PathIssue[]): ServerConfig | undefined {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    issues.push({ path: entryPath, message: "expected an object with \"command\" (stdio) or \"url\" (HTTP)" });
    return undefined;
  }
  const record = entry as Record<string, unknown>;
  const hasCommand = "command" in record;
  const hasUrl = "url" in record;
  if (hasCommand && hasUrl) {
    issues.push({ path: entryPath, message: "has both \"command\" and \"url\"; keep \"command\" for a subprocess or \"url\" for a remote server" });
    return undefined;
  }
  if (!hasCommand && !hasUrl) {
    issues.push({ path: entryPath, message: "needs \"command\" (a subprocess over stdio) or \"url\" (a Streamable HTTP or SSE server)" });
    return undefined;
  }

  const schema = hasCommand ? stdioEntrySchema : httpEntrySchema;
  const result = schema.safeParse(record);
  if (!result.success) {
    for (const issue of result.error.issues) issues.push({ path: [...entryPath, ...issue.path], message: issue.message });
    return undefined;
  }

  const known = new Set(Object.keys(schema.shape));
  const unknownKeys = Object.keys(record).filter((key) => !known.has(key));
  if (unknownKeys.length > 0) {
    log.warn(`mcp.json server "${name}": ignoring unknown keys ${unknownKeys.map((key) => JSON.stringify(key)).join(", ")}`);
  }

  const common = {
    name,
    disabled: result.data.disabled ?? false,
    includeTools: result.data.includeTools,
    excludeTools: result.data.excludeTools,
    timeoutMs: result.data.timeoutMs,
    approval: result.data.approval,
    roots: result.data.roots,
  };
  if (hasCommand) {
    const data = result.data as StdioEntry;
    return { ...common, type: "stdio", command: data.command, args: data.args ?? [], env: data.env ?? {}, cwd: data.cwd };
  }
  const data = result.data as HttpEntry;
  return { ...common, type: data.type ?? "http", url: data.url, headers: data.headers ?? {}, sseFallback: data.type === undefined };
}

/** Expands variables of an enabled server and checks the values that only exist after expansion. */
function expandServer(server: ServerConfig, env: NodeJS.ProcessEnv, baseDir: string): ServerConfig {
  // A disabled entry may refer to variables that are only set where it is used.
  if (server.disabled) return server;

  const expand = (text: string, field: string) => expandVariables(text, env, { server: server.name, field });
  const expandRecord = (record: Record<string, string>, field: string) =>
    Object.fromEntries(Object.entries(record).map(([key, value]) => [key, expand(value, formatPath([field, key]))]));

  const roots = server.roots === undefined || server.roots === false
    ? server.roots
    : server.roots.map((root, index) => resolve(baseDir, expand(root, formatPath(["roots", index]))));

  if (server.type === "stdio") {
    const cwd = server.cwd === undefined ? undefined : resolve(baseDir, expand(server.cwd, "cwd"));
    return {
      ...server,
      roots,
      command: expand(server.command, "command"),
      args: server.args.map((arg, index) => expand(arg, formatPath(["args", index]))),
      env: expandRecord(server.env, "env"),
      cwd,
    };
  }

  const url = expand(server.url, "url");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new NessoError("CONFIG", `mcp.json server "${server.name}", field url: "${url}" is not a valid URL (expected e.g. http://127.0.0.1:3000/mcp)`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new NessoError("CONFIG", `mcp.json server "${server.name}", field url: scheme ${parsed.protocol} is not supported (use http: or https:)`);
  }
  return { ...server, roots, url, headers: expandRecord(server.headers, "headers") };
}

/** Parses JSON and reports a syntax error with its line and column. */
function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    let where = "";
    if (position !== null) {
      const offset = Number(position[1]);
      const before = text.slice(0, offset);
      const line = before.split("\n").length;
      const column = offset - before.lastIndexOf("\n");
      where = ` at line ${line}, column ${column}`;
    }
    throw new NessoError("CONFIG", `${source} is not valid JSON${where}: ${message}`, { cause: error });
  }
}

/** Formats a path as JSON access syntax: `mcpServers.fetch.args[1]`, `mcpServers["my server"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(String(key))) text += text === "" ? String(key) : `.${String(key)}`;
    else text += `[${JSON.stringify(String(key))}]`;
  }
  return text === "" ? "(root)" : text;
}

function validationError(source: string, issues: readonly PathIssue[]): NessoError {
  const lines = issues.map((issue) => `  ${formatPath(issue.path)}: ${issue.message}`);
  return new NessoError("CONFIG", `${source} is invalid:\n${lines.join("\n")}`);
}
