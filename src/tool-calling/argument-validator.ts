// Validates tool-call arguments against the tool's `inputSchema` with ajv before any call, and
// words the failures so a small model can correct its call.

import { Ajv, type ErrorObject, type Options as AjvOptions, type ValidateFunction } from "ajv";
import { Ajv2019 } from "ajv/dist/2019.js";
import { Ajv2020 } from "ajv/dist/2020.js";

import { createLogger } from "../logger.js";
import type { RegisteredTool } from "../host/types.js";

const log = createLogger("tool-calling");

export type ArgumentValidation =
  | { ok: true; /** Set when the schema could not be compiled and the arguments went unchecked. */ unchecked?: string }
  | { ok: false; /** A message for the model: the violations, then the expected parameters. */ message: string; errors: ErrorObject[] };

const maxReportedErrors = 5;

/** JSON Schema dialect of a schema, chosen from its `$schema` URI; each has its own ajv class. */
type Dialect = "draft-07" | "2019-09" | "2020-12";

function dialectOf(schema: Record<string, unknown>): Dialect {
  const uri = typeof schema.$schema === "string" ? schema.$schema : "";
  if (uri.includes("2019-09")) return "2019-09";
  if (/draft-0[4-7]/.test(uri)) return "draft-07";
  // MCP specifies JSON Schema 2020-12 for an inputSchema without $schema.
  return "2020-12";
}

export class ArgumentValidator {
  private readonly compilers = new Map<Dialect, Ajv | Ajv2019 | Ajv2020>();
  private readonly cache = new WeakMap<object, ValidateFunction | string>();

  /** Checks `args` against the tool's input schema; `ok: false` carries a message for the model. */
  validate(tool: RegisteredTool, args: Record<string, unknown>): ArgumentValidation {
    const validate = this.compile(tool);
    if (typeof validate === "string") return { ok: true, unchecked: validate };
    if (validate(args)) return { ok: true };

    const errors = validate.errors ?? [];
    const problems = errors.slice(0, maxReportedErrors).map(describeError);
    if (errors.length > maxReportedErrors) problems.push(`and ${errors.length - maxReportedErrors} more`);
    const expected = describeParameters(tool.inputSchema);
    const message =
      `Invalid arguments for ${tool.name}: ${problems.join("; ")}.` +
      (expected === "" ? "" : ` Expected parameters: ${expected}.`) +
      ` Fix the arguments and call ${tool.name} again.`;
    return { ok: false, message, errors };
  }

  /** Returns the compiled validator, or the reason the schema could not be compiled. */
  private compile(tool: RegisteredTool): ValidateFunction | string {
    const cached = this.cache.get(tool.inputSchema);
    if (cached !== undefined) return cached;

    let result: ValidateFunction | string;
    try {
      const dialect = dialectOf(tool.inputSchema);
      // $schema picked the dialect already, and a top-level $id shared by two tools would clash in
      // ajv's registry, so neither reaches compile().
      const { $schema: _schema, $id: _id, ...schema } = tool.inputSchema;
      result = this.compilerFor(dialect).compile(schema);
    } catch (error) {
      result = `ajv could not compile the input schema of ${tool.name} (${(error as Error).message})`;
      log.warn(`${result}; its arguments are sent unchecked and the server must validate them`);
    }
    this.cache.set(tool.inputSchema, result);
    return result;
  }

  private compilerFor(dialect: Dialect): Ajv | Ajv2019 | Ajv2020 {
    let compiler = this.compilers.get(dialect);
    if (compiler === undefined) {
      const options: AjvOptions = {
        allErrors: true,
        // Servers write schemas with keywords and formats ajv does not know; those are skipped,
        // not rejected, and the server still validates formats itself.
        strict: false,
        validateFormats: false,
        logger: { log: (message: unknown) => log.debug(String(message)), warn: (message: unknown) => log.debug(String(message)), error: (message: unknown) => log.warn(String(message)) },
      };
      if (dialect === "draft-07") compiler = new Ajv(options);
      else if (dialect === "2019-09") compiler = new Ajv2019(options);
      else compiler = new Ajv2020(options);
      this.compilers.set(dialect, compiler);
    }
    return compiler;
  }
}

/** Words one ajv error with its location, e.g. `/head must be number`. */
function describeError(error: ErrorObject): string {
  const where = error.instancePath === "" ? "arguments" : `"${error.instancePath.slice(1).replaceAll("/", ".")}"`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return `missing required property "${String(params.missingProperty)}"`;
    case "additionalProperties":
      return `unknown property "${String(params.additionalProperty)}" in ${where}`;
    case "enum":
      return `${where} must be one of ${JSON.stringify(params.allowedValues)}`;
    default:
      return `${where} ${error.message ?? "is invalid"}`;
  }
}

/** Lists the top-level parameters of a schema as `path (string, required), head (number)`. */
export function describeParameters(schema: Record<string, unknown>): string {
  const properties = schema.properties;
  if (typeof properties !== "object" || properties === null) return "";
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);

  return Object.entries(properties as Record<string, Record<string, unknown>>)
    .map(([name, property]) => {
      const parts = [describeType(property)];
      if (required.has(name)) parts.push("required");
      return `${name} (${parts.join(", ")})`;
    })
    .join(", ");
}

function describeType(property: Record<string, unknown>): string {
  if (Array.isArray(property.enum)) return `one of ${JSON.stringify(property.enum)}`;
  const type = property.type;
  if (type === "array" && typeof property.items === "object" && property.items !== null) {
    return `array of ${describeType(property.items as Record<string, unknown>)}`;
  }
  if (Array.isArray(type)) return type.join(" or ");
  if (typeof type === "string") return type;
  if (Array.isArray(property.anyOf)) return "any of several shapes";
  return "any";
}
