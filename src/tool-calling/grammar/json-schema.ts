// The JSON Schema → grammar compiler. It turns a schema into rules that generate JSON text whose
// value validates against the schema (a subset of the valid values, never a superset, except
// where a dropped keyword is logged), in the compact form the chat template writes.
//
// Choices that make the grammar stricter than the schema:
// - object properties appear in the schema's key order, each at most once;
// - an object that declares properties but not `additionalProperties` gets no extra keys
//   (JSON Schema allows any), so the model cannot invent arguments;
// - strings, arrays and free-form objects without an upper bound get the caps of JsonGrammarOptions;
// - numbers with bounds have no exponent, and bounds between integers leave some values out.
// Keywords the compiler cannot express are dropped with a debug log and recorded in `dropped`;
// validating the generated value against the schema (ajv) catches what they would have rejected.

import { createLogger } from "../../logger.js";
import { NessoError } from "../../errors.js";
import { ALL_SCALARS, codePointSet, subtract, type CodePointSet } from "./code-points.js";
import { FORMAT_PATTERNS } from "./formats.js";
import { GrammarBuilder, MAX_REPETITION, literal, ref, type Element } from "./ir.js";
import { JsonRules, type JsonGrammarOptions } from "./json-rules.js";
import { compilePattern, PatternError } from "./pattern.js";

const log = createLogger("grammar");

type Schema = Record<string, unknown>;

/** A keyword the compiler left out, so the grammar accepts more than the schema at that spot. */
export interface DroppedKeyword {
  /** JSON pointer of the subschema, e.g. `#/properties/edits/items`. */
  path: string;
  keyword: string;
  reason: string;
}

/** Raised when a schema cannot be compiled at all (invalid `$ref`, unsatisfiable, not a schema). */
/** Deepest nesting of subschemas the compiler follows before it gives up on a schema. */
export const maxSchemaDepth = 256;

export class SchemaCompileError extends NessoError {
  readonly path: string;

  constructor(path: string, message: string) {
    super("UNSUPPORTED", `JSON Schema at ${path}: ${message}`);
    this.name = "SchemaCompileError";
    this.path = path;
  }
}

/** Keywords that only annotate and never constrain a value. */
const ANNOTATIONS = new Set([
  "$schema",
  "$id",
  "$comment",
  "$anchor",
  "$defs",
  "definitions",
  "title",
  "description",
  "default",
  "examples",
  "readOnly",
  "writeOnly",
  "deprecated",
  "contentMediaType",
  "contentEncoding",
  "markdownDescription",
]);

/** Keywords this compiler turns into grammar rules. */
const HANDLED = new Set([
  "$ref",
  "type",
  "enum",
  "const",
  "nullable",
  "anyOf",
  "oneOf",
  "allOf",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "prefixItems",
  "additionalItems",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
]);

const OBJECT_KEYWORDS = ["properties", "required", "additionalProperties", "patternProperties", "minProperties", "maxProperties", "propertyNames"];
const ARRAY_KEYWORDS = ["items", "prefixItems", "additionalItems", "minItems", "maxItems", "contains", "uniqueItems"];
const STRING_KEYWORDS = ["minLength", "maxLength", "pattern", "format"];
const NUMBER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];
const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const;
type TypeName = (typeof TYPES)[number];

function isSchemaObject(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Compiles JSON Schemas into rules of one GrammarBuilder; several schemas may share it. */
export class JsonSchemaCompiler {
  readonly builder: GrammarBuilder;
  readonly rules: JsonRules;
  readonly dropped: DroppedKeyword[] = [];
  private readonly refRules = new Map<unknown, Map<string, number>>();
  private readonly schemaRules = new Map<unknown, Map<unknown, number>>();
  /** Schemas being compiled, outermost first: the nesting depth of the current one. */
  private depth = 0;

  constructor(builder: GrammarBuilder, options: JsonGrammarOptions = {}) {
    this.builder = builder;
    this.rules = new JsonRules(builder, options);
  }

  /**
   * Returns a rule matching one JSON value (without surrounding whitespace) that validates
   * against `schema`. `$ref`s resolve against `document` (default: the schema itself).
   * Raises SchemaCompileError when the schema cannot be compiled.
   */
  compile(schema: unknown, document: unknown = schema, path = "#"): number {
    if (schema === true) return this.rules.anyValue();
    if (schema === false) throw new SchemaCompileError(path, "the schema `false` matches no value");
    if (!isSchemaObject(schema)) {
      throw new SchemaCompileError(path, `expected a schema object or boolean, got ${JSON.stringify(schema)}`);
    }
    let bySchema = this.schemaRules.get(document);
    if (!bySchema) {
      bySchema = new Map();
      this.schemaRules.set(document, bySchema);
    }
    const known = bySchema.get(schema);
    if (known !== undefined) return known;
    // Each level costs several stack frames, so a schema nested thousands deep would overflow
    // the stack; real tool schemas nest a few levels.
    if (this.depth >= maxSchemaDepth) {
      throw new SchemaCompileError(path, `the schema nests deeper than ${maxSchemaDepth} levels`);
    }
    this.depth++;
    try {
      const rule = this.compileObject(schema, document, path);
      bySchema.set(schema, rule);
      return rule;
    } finally {
      this.depth--;
    }
  }

  private drop(path: string, keyword: string, reason: string): void {
    if (this.dropped.some((d) => d.path === path && d.keyword === keyword)) return;
    this.dropped.push({ path, keyword, reason });
    log.debug(() => `JSON Schema at ${path}: keyword "${keyword}" dropped (${reason})`);
  }

  private compileObject(schema: Schema, document: unknown, path: string): number {
    for (const keyword of Object.keys(schema)) {
      if (!HANDLED.has(keyword) && !ANNOTATIONS.has(keyword) && !keyword.startsWith("x-")) {
        this.drop(path, keyword, "not supported by the grammar compiler");
      }
    }

    if (!Object.keys(schema).some((keyword) => HANDLED.has(keyword))) return this.rules.anyValue();
    if (typeof schema.$ref === "string") return this.compileRef(schema, document, path);
    if (Array.isArray(schema.allOf)) return this.compile(this.mergeAllOf(schema, document, path), document, path);
    for (const keyword of ["anyOf", "oneOf"] as const) {
      const branches = schema[keyword];
      if (Array.isArray(branches)) return this.compileBranches(schema, keyword, branches, document, path);
    }
    if ("const" in schema || Array.isArray(schema.enum)) return this.compileConstants(schema, path);

    const types = this.typesOf(schema, path);
    const alternatives: Element[][] = [];
    for (const type of types) {
      const rule = this.compileType(type, schema, document, path);
      if (rule !== null) alternatives.push([ref(rule)]);
    }
    if (alternatives.length === 0) throw new SchemaCompileError(path, "no type of this schema can be generated");
    if (alternatives.length === 1) return (alternatives[0][0] as { rule: number }).rule;
    return this.builder.add("value", alternatives);
  }

  /** Returns the types a value may have, in the order the alternatives are offered. */
  private typesOf(schema: Schema, path: string): TypeName[] {
    const declared = schema.type;
    let types: TypeName[];
    if (typeof declared === "string") types = [declared as TypeName];
    else if (Array.isArray(declared)) types = declared.filter((t): t is TypeName => typeof t === "string") as TypeName[];
    else {
      // Without `type`, keywords only apply to their own type; generating only those types is a subset.
      const has = (keywords: string[]) => keywords.some((k) => k in schema);
      types = [];
      if (has(OBJECT_KEYWORDS)) types.push("object");
      if (has(ARRAY_KEYWORDS)) types.push("array");
      if (has(STRING_KEYWORDS)) types.push("string");
      if (has(NUMBER_KEYWORDS)) types.push("number");
      if (types.length === 0) types = [...TYPES];
    }
    for (const type of types) {
      if (!TYPES.includes(type)) throw new SchemaCompileError(path, `unknown type ${JSON.stringify(type)}`);
    }
    if (types.includes("number") && types.includes("integer")) types = types.filter((t) => t !== "integer");
    if (schema.nullable === true && !types.includes("null")) types = [...types, "null"];
    return types;
  }

  private compileType(type: TypeName, schema: Schema, document: unknown, path: string): number | null {
    switch (type) {
      case "object":
        return this.compileObjectType(schema, document, path);
      case "array":
        return this.compileArray(schema, document, path);
      case "string":
        return this.compileString(schema, path);
      case "integer":
        return this.compileInteger(schema, path);
      case "number":
        return this.compileNumber(schema, path);
      case "boolean":
        return this.rules.boolean();
      case "null":
        return this.rules.null();
    }
  }

  private compileRef(schema: Schema, document: unknown, path: string): number {
    const pointer = schema.$ref as string;
    for (const keyword of Object.keys(schema)) {
      if (keyword !== "$ref" && HANDLED.has(keyword)) this.drop(path, keyword, "keywords beside $ref are not compiled");
    }
    let byPointer = this.refRules.get(document);
    if (!byPointer) {
      byPointer = new Map();
      this.refRules.set(document, byPointer);
    }
    const known = byPointer.get(pointer);
    if (known !== undefined) return known;

    const target = resolvePointer(document, pointer, path);
    // Reserved before compiling the target so that recursive references find it.
    const rule = this.builder.reserve(`ref ${pointer}`);
    byPointer.set(pointer, rule);
    const inner = this.compile(target, document, pointer);
    this.builder.define(rule, [[ref(inner)]]);
    return rule;
  }

  private compileBranches(schema: Schema, keyword: "anyOf" | "oneOf", branches: unknown[], document: unknown, path: string): number {
    // NOTE: oneOf is generated like anyOf; a value that matches two branches fails oneOf validation.
    const rest: Schema = { ...schema };
    delete rest[keyword];
    const restConstrains = Object.keys(rest).some((k) => HANDLED.has(k));
    const alternatives: Element[][] = [];
    let firstError: unknown;
    branches.forEach((branch, i) => {
      const branchPath = `${path}/${keyword}/${i}`;
      try {
        const merged = restConstrains ? { allOf: [rest, branch] } : branch;
        alternatives.push([ref(this.compile(merged, document, branchPath))]);
      } catch (error) {
        if (!(error instanceof SchemaCompileError)) throw error;
        firstError ??= error;
        log.debug(() => `JSON Schema at ${branchPath}: branch left out (${error.message})`);
      }
    });
    if (alternatives.length === 0) {
      throw firstError ?? new SchemaCompileError(path, `${keyword} has no branches`);
    }
    return this.builder.add(keyword, alternatives);
  }

  private compileConstants(schema: Schema, path: string): number {
    let values: unknown[] = "const" in schema ? [schema.const] : (schema.enum as unknown[]);
    const types = "type" in schema || schema.nullable === true ? this.typesOf(schema, path) : null;
    if (types) values = values.filter((value) => types.some((type) => valueHasType(value, type)));
    if (values.length === 0) throw new SchemaCompileError(path, "no enum or const value has the declared type");
    for (const keyword of [...STRING_KEYWORDS, ...NUMBER_KEYWORDS, ...OBJECT_KEYWORDS, ...ARRAY_KEYWORDS]) {
      if (keyword in schema) this.drop(path, keyword, "enum and const values are generated literally");
    }
    return this.builder.add("enum", values.map((value) => [ref(this.rules.constant(value))]));
  }

  private compileObjectType(schema: Schema, document: unknown, path: string): number {
    for (const keyword of ["patternProperties", "minProperties", "maxProperties", "propertyNames"]) {
      if (keyword in schema) this.drop(path, keyword, "object keyword not supported");
    }
    const properties = isSchemaObject(schema.properties) ? schema.properties : {};
    const required = new Set(Array.isArray(schema.required) ? schema.required.filter((k): k is string => typeof k === "string") : []);
    // Without declared properties an object is free-form; with them, extra keys need an explicit
    // additionalProperties, so the model cannot invent arguments.
    const declaresKeys = isSchemaObject(schema.properties) || Array.isArray(schema.required);
    const additional = schema.additionalProperties ?? (declaresKeys ? false : true);

    const members: Array<{ key: string; required: boolean; value: number }> = [];
    for (const [key, propertySchema] of Object.entries(properties)) {
      const propertyPath = `${path}/properties/${escapePointer(key)}`;
      if (propertySchema === false) {
        if (required.has(key)) throw new SchemaCompileError(propertyPath, "a required property has the schema `false`");
        continue;
      }
      members.push({ key, required: required.has(key), value: this.compile(propertySchema, document, propertyPath) });
    }
    for (const key of required) {
      if (key in properties) continue;
      if (additional === false) {
        throw new SchemaCompileError(path, `property "${key}" is required but additionalProperties is false`);
      }
      const valueSchema = isSchemaObject(additional) ? additional : true;
      members.push({ key, required: true, value: this.compile(valueSchema, document, `${path}/additionalProperties`) });
    }

    const ws = () => this.rules.ws();
    const member = (key: string, value: number): Element[] => [
      ...literal(JSON.stringify(key)),
      ws(),
      ...literal(":"),
      ws(),
      ref(value),
      ws(),
    ];

    // Extra members come after the declared ones, with keys that differ from every declared key.
    let extraRepeat: number | null = null;
    let extraMember: number | null = null;
    if (additional === true || isSchemaObject(additional)) {
      const value = additional === true ? this.rules.anyValue() : this.compile(additional, document, `${path}/additionalProperties`);
      const key = this.keyNotIn(Object.keys(properties).concat([...required]));
      extraMember = this.builder.add("extra-member", [[ref(key), ws(), ...literal(":"), ws(), ref(value), ws()]]);
      extraRepeat = this.builder.add("extra-member-more", [[...literal(","), ws(), ref(extraMember)]]);
    }
    const cap = this.rules.options.maxObjectMembers;

    // afterFirst[i]: members i.. when at least one member was written (each needs a leading comma).
    // fromStart[i]: members i.. when none was written yet.
    const n = members.length;
    let afterFirst = this.builder.add("members-tail", [extraRepeat === null ? [] : [ref(extraRepeat, 0, cap)]]);
    let fromStart = this.builder.add(
      "members",
      extraMember === null ? [[]] : [[ref(extraMember), ref(extraRepeat!, 0, cap - 1)], []],
    );
    for (let i = n - 1; i >= 0; i--) {
      const { key, required: isRequired, value } = members[i];
      const written = member(key, value);
      const nextAfterFirst = afterFirst;
      const nextFromStart = fromStart;
      afterFirst = this.builder.add(
        "members-tail",
        isRequired
          ? [[...literal(","), ws(), ...written, ref(nextAfterFirst)]]
          : [[...literal(","), ws(), ...written, ref(nextAfterFirst)], [ref(nextAfterFirst)]],
      );
      fromStart = this.builder.add(
        "members",
        isRequired ? [[...written, ref(nextAfterFirst)]] : [[...written, ref(nextAfterFirst)], [ref(nextFromStart)]],
      );
    }
    return this.builder.add("object", [[...literal("{"), ws(), ref(fromStart), ...literal("}")]]);
  }

  /** Returns a rule for a JSON string (with quotes) whose decoded value differs from every entry of `names`. */
  private keyNotIn(names: string[]): number {
    const unique = [...new Set(names)];
    if (unique.length === 0) return this.rules.string();
    interface TrieNode {
      terminal: boolean;
      children: Map<number, TrieNode>;
    }
    const root: TrieNode = { terminal: false, children: new Map() };
    for (const name of unique) {
      let node = root;
      for (const char of name) {
        const codePoint = char.codePointAt(0)!;
        let child = node.children.get(codePoint);
        if (!child) {
          child = { terminal: false, children: new Map() };
          node.children.set(codePoint, child);
        }
        node = child;
      }
      node.terminal = true;
    }
    const maxLength = this.rules.options.maxStringLength;
    const anyRest = ref(this.rules.anyCharacter(), 0, maxLength);
    const quote = literal('"');
    const emit = (node: TrieNode): number => {
      const alternatives: Element[][] = [];
      if (!node.terminal) alternatives.push(quote);
      const childSet: CodePointSet = codePointSet([...node.children.keys()].map((c) => [c, c] as [number, number]));
      for (const [codePoint, child] of node.children) {
        alternatives.push([ref(this.rules.character([[codePoint, codePoint]])), ref(emit(child))]);
      }
      // A character no declared key has at this position makes the key different from all of them.
      const others = subtract(ALL_SCALARS, childSet);
      alternatives.push([ref(this.rules.character(others)), anyRest, ...quote]);
      return this.builder.add("key-not-declared", alternatives);
    };
    return this.builder.add("extra-key", [[...quote, ref(emit(root))]]);
  }

  private compileArray(schema: Schema, document: unknown, path: string): number {
    for (const keyword of ["contains", "uniqueItems", "minContains", "maxContains", "unevaluatedItems"]) {
      if (keyword in schema && schema[keyword] !== false) this.drop(path, keyword, "array keyword not supported");
    }
    const tuple = Array.isArray(schema.prefixItems) ? schema.prefixItems : Array.isArray(schema.items) ? schema.items : [];
    const restSchema: unknown = Array.isArray(schema.items) ? (schema.additionalItems ?? true) : (schema.items ?? true);
    const minItems = typeof schema.minItems === "number" ? Math.max(0, Math.ceil(schema.minItems)) : 0;
    let maxItems = typeof schema.maxItems === "number" ? Math.floor(schema.maxItems) : Math.max(minItems, this.rules.options.maxArrayItems);
    maxItems = Math.min(maxItems, MAX_REPETITION);
    if (restSchema === false) maxItems = Math.min(maxItems, tuple.length);
    if (minItems > maxItems) {
      throw new SchemaCompileError(path, `minItems ${minItems} exceeds the ${maxItems} items that can be generated`);
    }

    const ws = () => this.rules.ws();
    const itemRules = tuple.map((item, i) => this.compile(item, document, `${path}/prefixItems/${i}`));
    const restPath = `${path}/items`;
    let restRule: number | null = null;
    const rest = () => (restRule ??= this.compile(restSchema, document, restPath));
    const itemAt = (i: number) => (i < itemRules.length ? itemRules[i] : rest());

    if (maxItems === 0) return this.builder.add("array", [[...literal("["), ws(), ...literal("]")]]);

    // tail(i): the items from index i on, when i items are written already (i ≥ 1).
    const tail = (i: number): number => {
      if (i >= maxItems) return this.builder.add("items-tail", [[]]);
      if (i >= itemRules.length) {
        const more = this.builder.add("item-more", [[...literal(","), ws(), ref(rest()), ws()]]);
        return this.builder.add("items-tail", [[ref(more, Math.max(0, minItems - i), maxItems - i)]]);
      }
      const next: Element[] = [...literal(","), ws(), ref(itemRules[i]), ws(), ref(tail(i + 1))];
      return this.builder.add("items-tail", i >= minItems ? [next, []] : [next]);
    };
    const body = this.builder.add("items", [[ref(itemAt(0)), ws(), ref(tail(1))]]);
    return this.builder.add("array", [[...literal("["), ws(), ref(body, minItems > 0 ? 1 : 0, 1), ...literal("]")]]);
  }

  private compileString(schema: Schema, path: string): number {
    const minLength = typeof schema.minLength === "number" ? Math.max(0, Math.ceil(schema.minLength)) : 0;
    const maxLength = typeof schema.maxLength === "number" ? Math.min(Math.floor(schema.maxLength), MAX_REPETITION) : null;
    const character = (set: CodePointSet) => this.rules.character(set);
    const maxRepetition = this.rules.options.maxStringLength;
    const lengthKeywords = ["minLength", "maxLength"].filter((k) => k in schema);

    if (typeof schema.format === "string") {
      const format = FORMAT_PATTERNS[schema.format];
      if (format) {
        if (typeof schema.pattern === "string") this.drop(path, "pattern", "format is generated instead");
        for (const keyword of lengthKeywords) this.drop(path, keyword, "format is generated instead");
        const content = compilePattern(this.builder, format.pattern, { character, maxRepetition, caseInsensitive: format.caseInsensitive });
        return this.rules.stringOf(content, `format ${schema.format}`);
      }
      this.drop(path, "format", `format "${schema.format}" is not supported`);
    }
    if (typeof schema.pattern === "string") {
      try {
        const content = compilePattern(this.builder, schema.pattern, { character, maxRepetition });
        for (const keyword of lengthKeywords) this.drop(path, keyword, "pattern is generated instead");
        return this.rules.stringOf(content, "pattern");
      } catch (error) {
        if (!(error instanceof PatternError)) throw error;
        this.drop(path, "pattern", error.message);
      }
    }
    if (maxLength !== null && minLength > maxLength) {
      throw new SchemaCompileError(path, `minLength ${minLength} exceeds maxLength ${maxLength}`);
    }
    return this.rules.string(minLength, maxLength);
  }

  private compileInteger(schema: Schema, path: string): number {
    if ("multipleOf" in schema) this.drop(path, "multipleOf", "not supported by the grammar compiler");
    const { minimum, exclusiveMinimum, maximum, exclusiveMaximum } = numericBounds(schema);
    let low: bigint | null = null;
    let high: bigint | null = null;
    if (minimum !== null) low = BigInt(exclusiveMinimum && Number.isInteger(minimum) ? minimum + 1 : Math.ceil(minimum));
    if (maximum !== null) high = BigInt(exclusiveMaximum && Number.isInteger(maximum) ? maximum - 1 : Math.floor(maximum));
    if (low !== null && high !== null && low > high) {
      throw new SchemaCompileError(path, `no integer lies between minimum ${minimum} and maximum ${maximum}`);
    }
    return this.rules.integer(low, high);
  }

  private compileNumber(schema: Schema, path: string): number {
    if ("multipleOf" in schema) this.drop(path, "multipleOf", "not supported by the grammar compiler");
    const bounds = numericBounds(schema);
    if (bounds.minimum === null && bounds.maximum === null) return this.rules.number();
    if (bounds.minimum !== null && bounds.maximum !== null && bounds.minimum > bounds.maximum) {
      throw new SchemaCompileError(path, `minimum ${bounds.minimum} exceeds maximum ${bounds.maximum}`);
    }
    const rule = this.rules.boundedNumber(bounds);
    if (this.builder.isEmptyRule(rule)) {
      this.drop(path, "minimum/maximum", "no integer or integer-part range fits between the bounds");
      return this.rules.number();
    }
    return rule;
  }

  /** Merges `allOf` members (resolving their `$ref`s) into one schema. */
  private mergeAllOf(schema: Schema, document: unknown, path: string, seen = new Set<string>()): Schema {
    const { allOf, ...rest } = schema;
    let merged: Schema = rest;
    (allOf as unknown[]).forEach((member, i) => {
      const memberPath = `${path}/allOf/${i}`;
      const chain = new Set(seen);
      let resolved = member;
      while (isSchemaObject(resolved) && typeof resolved.$ref === "string") {
        if (chain.has(resolved.$ref)) throw new SchemaCompileError(memberPath, `allOf refers back to ${resolved.$ref} in a cycle`);
        chain.add(resolved.$ref);
        resolved = resolvePointer(document, resolved.$ref, memberPath);
      }
      if (resolved === true) return;
      if (!isSchemaObject(resolved)) throw new SchemaCompileError(memberPath, "allOf member `false` or not a schema matches no value");
      const flat = Array.isArray(resolved.allOf) ? this.mergeAllOf(resolved, document, memberPath, chain) : resolved;
      merged = mergeSchemas(merged, flat, memberPath, (keyword, reason) => this.drop(memberPath, keyword, reason));
    });
    return merged;
  }
}

/** Intersects two schemas keyword by keyword, as far as that is expressible in one schema. */
function mergeSchemas(a: Schema, b: Schema, path: string, drop: (keyword: string, reason: string) => void): Schema {
  const merged: Schema = { ...a };
  for (const [keyword, value] of Object.entries(b)) {
    if (!(keyword in merged) || ANNOTATIONS.has(keyword)) {
      merged[keyword] = value;
      continue;
    }
    const current = merged[keyword];
    switch (keyword) {
      case "type": {
        const left = Array.isArray(current) ? current : [current];
        const right = Array.isArray(value) ? value : [value];
        const both = left.filter((t) => right.includes(t) || (t === "integer" && right.includes("number")));
        for (const t of right) if (t === "integer" && left.includes("number") && !both.includes(t)) both.push(t);
        if (both.length === 0) throw new SchemaCompileError(path, `allOf members have no type in common`);
        merged.type = both.length === 1 ? both[0] : both;
        break;
      }
      case "properties": {
        const properties: Schema = { ...(current as Schema) };
        for (const [key, propertySchema] of Object.entries(value as Schema)) {
          properties[key] = key in properties ? { allOf: [properties[key], propertySchema] } : propertySchema;
        }
        merged.properties = properties;
        break;
      }
      case "required":
        merged.required = [...new Set([...(current as string[]), ...(value as string[])])];
        break;
      case "enum":
        merged.enum = (current as unknown[]).filter((x) => (value as unknown[]).some((y) => JSON.stringify(x) === JSON.stringify(y)));
        break;
      case "minimum":
      case "minLength":
      case "minItems":
      case "exclusiveMinimum":
        merged[keyword] = typeof current === "number" && typeof value === "number" ? Math.max(current, value) : value;
        break;
      case "maximum":
      case "maxLength":
      case "maxItems":
      case "exclusiveMaximum":
        merged[keyword] = typeof current === "number" && typeof value === "number" ? Math.min(current, value) : value;
        break;
      case "additionalProperties":
        if (current === false || value === false) merged.additionalProperties = false;
        else if (current === true) merged.additionalProperties = value;
        else if (value !== true) merged.additionalProperties = { allOf: [current, value] };
        break;
      case "items":
        merged.items = { allOf: [current, value] };
        break;
      case "anyOf":
      case "oneOf":
        merged.allOf = [{ [keyword]: current }, { [keyword]: value }];
        delete merged[keyword];
        break;
      default:
        if (JSON.stringify(current) !== JSON.stringify(value)) drop(keyword, "conflicting values in allOf; the first one is kept");
    }
  }
  return merged;
}

function numericBounds(schema: Schema): {
  minimum: number | null;
  exclusiveMinimum: boolean;
  maximum: number | null;
  exclusiveMaximum: boolean;
} {
  let minimum = typeof schema.minimum === "number" ? schema.minimum : null;
  let maximum = typeof schema.maximum === "number" ? schema.maximum : null;
  // Draft 4 writes exclusiveness as a boolean beside minimum/maximum; later drafts as a number.
  let exclusiveMinimum = schema.exclusiveMinimum === true;
  let exclusiveMaximum = schema.exclusiveMaximum === true;
  if (typeof schema.exclusiveMinimum === "number" && (minimum === null || schema.exclusiveMinimum >= minimum)) {
    minimum = schema.exclusiveMinimum;
    exclusiveMinimum = true;
  }
  if (typeof schema.exclusiveMaximum === "number" && (maximum === null || schema.exclusiveMaximum <= maximum)) {
    maximum = schema.exclusiveMaximum;
    exclusiveMaximum = true;
  }
  return { minimum, exclusiveMinimum, maximum, exclusiveMaximum };
}

function valueHasType(value: unknown, type: TypeName): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "string":
      return typeof value === "string";
    case "array":
      return Array.isArray(value);
    case "object":
      return isSchemaObject(value);
  }
}

function escapePointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** Resolves a local `$ref` ("#", "#/$defs/x") inside `document`. */
function resolvePointer(document: unknown, pointer: string, path: string): unknown {
  if (!pointer.startsWith("#")) {
    throw new SchemaCompileError(path, `$ref ${JSON.stringify(pointer)} is not a local reference; only "#/..." pointers into the same schema are supported`);
  }
  let target: unknown = document;
  const body = pointer.slice(1);
  if (body === "") return target;
  if (!body.startsWith("/")) {
    throw new SchemaCompileError(path, `$ref ${JSON.stringify(pointer)} is not a JSON pointer (anchors are not supported)`);
  }
  for (const rawToken of body.slice(1).split("/")) {
    const token = decodeURIComponent(rawToken).replace(/~1/g, "/").replace(/~0/g, "~");
    if (typeof target !== "object" || target === null || !(token in target)) {
      throw new SchemaCompileError(path, `$ref ${JSON.stringify(pointer)} does not resolve: no "${token}" in the schema`);
    }
    target = (target as Record<string, unknown>)[token];
  }
  return target;
}
