// Expansion of environment variable references in mcp.json values.
//
// Supported forms: `${NAME}`, `${NAME:-default}` (the default applies when NAME is unset or empty,
// as in POSIX shells) and `${env:NAME}` (the VS Code spelling). `$${` writes a literal `${`.

import { NessoError } from "../errors.js";

/** Location of a value in mcp.json, so that an error can name the server and the field. */
export interface ExpandLocation {
  server: string;
  /** JSON path of the field inside the server entry, e.g. `args[1]` or `env.API_KEY`. */
  field: string;
}

const referencePattern = /\$\$\{|\$\{([^}]*)\}/g;
const variableName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces every variable reference in `text` with its value from `env`.
 * Throws a CONFIG NessoError for an unset variable without default, naming the server and the field.
 */
export function expandVariables(text: string, env: NodeJS.ProcessEnv, location: ExpandLocation): string {
  return text.replace(referencePattern, (match: string, body: string | undefined) => {
    if (match === "$${") return "${";

    const reference = (body ?? "").startsWith("env:") ? (body ?? "").slice(4) : (body ?? "");
    const separator = reference.indexOf(":-");
    const name = separator === -1 ? reference : reference.slice(0, separator);
    const fallback = separator === -1 ? undefined : reference.slice(separator + 2);

    if (!variableName.test(name)) {
      throw new NessoError(
        "CONFIG",
        `mcp.json server "${location.server}", field ${location.field}: "${match}" is not a valid variable reference ` +
          `(use \${NAME} or \${NAME:-default} with NAME made of letters, digits and _, or write $\${ for a literal \${)`,
      );
    }

    const value = env[name];
    if (value !== undefined && value !== "") return value;
    if (fallback !== undefined) return fallback;
    if (value === "") return "";
    throw new NessoError(
      "CONFIG",
      `mcp.json server "${location.server}", field ${location.field}: environment variable ${name} is not set ` +
        `and has no default (set ${name}, or write \${${name}:-default})`,
    );
  });
}
