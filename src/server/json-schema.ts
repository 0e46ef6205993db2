// Compiles a caller's JSON Schema with ajv for the `extract` tool. Unlike tool input schemas, a
// schema that does not compile is the caller's error and is reported, not skipped.

import { Ajv, type ErrorObject, type Options as AjvOptions, type ValidateFunction } from "ajv";
import { Ajv2019 } from "ajv/dist/2019.js";
import { Ajv2020 } from "ajv/dist/2020.js";

import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";

const log = createLogger("server");

const maxReportedErrors = 5;

type Dialect = "draft-07" | "2019-09" | "2020-12";

/** Picks the ajv class from `$schema`; without one the schema is read as 2020-12, as MCP does. */
function dialectOf(schema: Record<string, unknown>): Dialect {
  const uri = typeof schema.$schema === "string" ? schema.$schema : "";
  if (uri.includes("2019-09")) return "2019-09";
  if (/draft-0[4-7]/.test(uri)) return "draft-07";
  return "2020-12";
}

/**
 * Creates a fresh ajv instance. One per schema keeps ajv's registry from growing with every
 * caller's schema in a long-running server, and two schemas with the same $id from clashing.
 */
function createCompiler(dialect: Dialect): Ajv | Ajv2019 | Ajv2020 {
  const options: AjvOptions = {
    allErrors: true,
    strict: false,
    // NOTE: no format validator is installed (ajv-formats), so "format" keywords are not checked.
    validateFormats: false,
    logger: { log: (message: unknown) => log.debug(String(message)), warn: (message: unknown) => log.debug(String(message)), error: (message: unknown) => log.warn(String(message)) },
  };
  if (dialect === "draft-07") return new Ajv(options);
  if (dialect === "2019-09") return new Ajv2019(options);
  return new Ajv2020(options);
}

/** A compiled schema; `check` returns the violations as short sentences (empty when valid). */
export interface CompiledSchema {
  check(value: unknown): string[];
}

/** Compiles `schema`; throws an INVALID_ARGUMENT NessoError that quotes ajv's reason when it cannot. */
export function compileJsonSchema(schema: Record<string, unknown>): CompiledSchema {
  let validate: ValidateFunction;
  try {
    // $schema already picked the dialect; ajv would otherwise look it up as a meta-schema.
    const { $schema: _schema, ...body } = schema;
    validate = createCompiler(dialectOf(schema)).compile(body);
  } catch (error) {
    throw new NessoError("INVALID_ARGUMENT", `the JSON Schema in "schema" is invalid: ${(error as Error).message}; fix the schema and call again`);
  }
  return {
    check(value) {
      if (validate(value)) return [];
      const errors = validate.errors ?? [];
      const problems = errors.slice(0, maxReportedErrors).map(describeSchemaError);
      if (errors.length > maxReportedErrors) problems.push(`and ${errors.length - maxReportedErrors} more`);
      return problems;
    },
  };
}

/** Words one ajv error with its location, e.g. `"items.0.price" must be number`. */
function describeSchemaError(error: ErrorObject): string {
  const where = error.instancePath === "" ? "the value" : `"${error.instancePath.slice(1).replaceAll("/", ".")}"`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return `${where} is missing the required property "${String(params.missingProperty)}"`;
    case "additionalProperties":
      return `${where} has the property "${String(params.additionalProperty)}", which the schema does not allow`;
    case "enum":
      return `${where} must be one of ${JSON.stringify(params.allowedValues)}`;
    default:
      return `${where} ${error.message ?? "is invalid"}`;
  }
}
