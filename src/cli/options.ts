// Command-line parsing shared by the subcommands (node:util parseArgs, errors as UsageError).

import { parseArgs, type ParseArgsConfig } from "node:util";
import { LogLevel, setLogLevel } from "../logger.js";
import { UsageError } from "./report-error.js";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** Options every model-using command accepts. */
export const modelOptions = {
  model: { type: "string" },
  revision: { type: "string" },
  threads: { type: "string" },
  "context-size": { type: "string" },
} as const satisfies OptionSpec;

/** Options of commands that connect the servers of mcp.json. */
export const hostOptions = {
  config: { type: "string" },
} as const satisfies OptionSpec;

export const commonOptions = {
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpec;

export const modelOptionsHelp = `  --model DIR|REPO      Model directory or Hugging Face repo id (default mlx-community/nesso-0.4B-agentic-mlx)
  --revision REV        Branch, tag or commit of a repo id (default main)
  --threads N           Compute threads (default: physical cores)
  --context-size N      KV cache positions (default: the model's maximum, 4096 for Nesso)`;

export const hostOptionsHelp = `  --config FILE         mcp.json to use (default ./mcp.json, then the user config directory)`;

export const commonOptionsHelp = `  -v, --verbose         Debug logs on stderr
  -h, --help            Show this help`;

export type ParsedCommand<T extends OptionSpec> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>>;

/** Parses argv with parseArgs; unknown options and bad values become UsageErrors. */
export function parseCommand<T extends OptionSpec>(command: string, argv: string[], options: T, allowPositionals = false): ParsedCommand<T> {
  let parsed: ParsedCommand<T>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(describeParseError(command, error as Error & { code?: string }, Object.keys(options)));
  }
  if ((parsed.values as Record<string, unknown>).verbose === true) setLogLevel(LogLevel.Debug);
  return parsed;
}

/** Reads an integer option, rejecting anything but a whole number in [min, max]. */
export function integerOption(value: string | undefined, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return number;
}

/** Rewrites node:util's parse errors into one short sentence with a hint, e.g. a likely option name. */
function describeParseError(command: string, error: Error & { code?: string }, known: string[]): string {
  const help = `run "nesso-mcp ${command} --help" for the options`;
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(error.message)?.[1];
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown !== undefined) {
    const name = unknown.replace(/^-+/, "");
    const closest = known.map((option) => ({ option, distance: editDistance(name, option) })).sort((a, b) => a.distance - b.distance)[0];
    const suggestion = closest !== undefined && closest.distance <= 2 ? ` (did you mean --${closest.option}?)` : "";
    return `unknown option ${unknown}${suggestion}; ${help}`;
  }
  const ambiguous = /Option '(-{1,2}[^']+)[^']*' argument is ambiguous/.exec(error.message)?.[1];
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && ambiguous !== undefined) {
    return `the value of ${ambiguous} starts with "-"; write it as ${ambiguous}=VALUE`;
  }
  return `${error.message}; ${help}`;
}

/** Levenshtein distance, for option-name suggestions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
