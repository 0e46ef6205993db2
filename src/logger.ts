// The one logger of nesso-mcp. It writes to stderr only, because stdout carries the MCP stdio wire
// whenever `nesso-mcp serve` runs.

export enum LogLevel {
  Error = 0,
  Warn = 1,
  Info = 2,
  Debug = 3,
}

const levelNames: Record<LogLevel, string> = {
  [LogLevel.Error]: "error",
  [LogLevel.Warn]: "warn",
  [LogLevel.Info]: "info",
  [LogLevel.Debug]: "debug",
};

/** Parses NESSO_MCP_LOG_LEVEL, NESSO_MCP_DEBUG and DEBUG into the starting level (default: warn). */
function levelFromEnvironment(env: NodeJS.ProcessEnv): LogLevel {
  const named = env.NESSO_MCP_LOG_LEVEL?.toLowerCase();
  for (const [level, name] of Object.entries(levelNames)) {
    if (name === named) return Number(level) as LogLevel;
  }
  const debug = env.NESSO_MCP_DEBUG ?? "";
  if (debug !== "" && debug !== "0") return LogLevel.Debug;
  if ((env.DEBUG ?? "").split(",").some((pattern) => pattern === "*" || pattern.startsWith("nesso"))) {
    return LogLevel.Debug;
  }
  return LogLevel.Warn;
}

let currentLevel = levelFromEnvironment(process.env);
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export function setLogLevel(level: LogLevel): void {
  currentLevel = level;
}

export function getLogLevel(): LogLevel {
  return currentLevel;
}

/** Replaces the output function (tests capture lines this way). Returns the previous one. */
export function setLogSink(next: (line: string) => void): (line: string) => void {
  const previous = sink;
  sink = next;
  return previous;
}

export interface Logger {
  error(message: string, detail?: unknown): void;
  warn(message: string, detail?: unknown): void;
  info(message: string, detail?: unknown): void;
  /** Debug output costs only a comparison when the level is lower. */
  debug(message: string | (() => string), detail?: unknown): void;
  enabled(level: LogLevel): boolean;
}

function formatDetail(detail: unknown): string {
  if (detail === undefined) return "";
  if (detail instanceof Error) return ` ${detail.stack ?? detail.message}`;
  if (typeof detail === "string") return ` ${detail}`;
  try {
    return ` ${JSON.stringify(detail)}`;
  } catch {
    return ` ${String(detail)}`;
  }
}

/** Creates a logger whose lines are prefixed with the component name, e.g. `[nesso-mcp:host]`. */
export function createLogger(component: string): Logger {
  const write = (level: LogLevel, message: string | (() => string), detail?: unknown) => {
    if (level > currentLevel) return;
    const text = typeof message === "function" ? message() : message;
    sink(`[nesso-mcp:${component}] ${levelNames[level]}: ${text}${formatDetail(detail)}`);
  };
  return {
    error: (message, detail) => write(LogLevel.Error, message, detail),
    warn: (message, detail) => write(LogLevel.Warn, message, detail),
    info: (message, detail) => write(LogLevel.Info, message, detail),
    debug: (message, detail) => write(LogLevel.Debug, message, detail),
    enabled: (level) => level <= currentLevel,
  };
}
