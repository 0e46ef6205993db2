// The grammar intermediate representation: a context-free grammar over bytes, stored as flat typed
// arrays so that it can be serialized and handed to the native token-mask engine unchanged.
//
// A grammar is a list of rules. Each rule has one or more alternatives, and each alternative is a
// sequence of elements that ends with an `End` element. An element matches one byte from a byte
// set, one special token, or a repetition `{min,max}` of another rule.

import { NessoError } from "../../errors.js";

export const ElementKind = {
  /** Closes an alternative. */
  End: 0,
  /** Matches one byte whose bit is set in byte set `value`. */
  Bytes: 1,
  /** Matches rule `value` between `min` and `max` times. */
  Rule: 2,
  /** Matches the special (added) token with id `value`, which has no byte form. */
  Token: 3,
} as const;

export type ElementKindValue = (typeof ElementKind)[keyof typeof ElementKind];

/** Highest repetition bound an element may carry, so that (position, count) packs into a double. */
export const MAX_REPETITION = 0xffff;

/** A compiled grammar. All arrays are indexed by rule, alternative or element number. */
export interface GrammarIR {
  version: 1;
  /** Rule names, for messages and debugging only. */
  ruleNames: string[];
  /** Alternatives of rule r are `ruleAltStart[r] .. ruleAltStart[r + 1] - 1` (length: rules + 1). */
  ruleAltStart: Uint32Array;
  /** First element of each alternative (length: alternatives). */
  altElementStart: Uint32Array;
  elementKind: Uint8Array;
  /** Byte-set index for Bytes, rule id for Rule, token id for Token, 0 for End. */
  elementValue: Uint32Array;
  /** Repetition bounds of Rule elements; 1 for the other kinds. */
  elementMin: Uint32Array;
  elementMax: Uint32Array;
  /** 32 bytes (256 bits) per byte set; bit b of set s is `byteSets[s * 32 + (b >> 3)] >> (b & 7) & 1`. */
  byteSets: Uint8Array;
  /** The rule a complete input must match. */
  root: number;
}

/** A grammar element as the builder receives it, before flattening. */
export type Element =
  | { kind: "bytes"; set: ByteSet }
  | { kind: "rule"; rule: number; min: number; max: number }
  | { kind: "token"; id: number };

/** A set of bytes as a 256-bit map (32 bytes). */
export type ByteSet = Uint8Array;

export class GrammarBuildError extends NessoError {
  constructor(message: string) {
    super("UNSUPPORTED", message);
    this.name = "GrammarBuildError";
  }
}

/** Creates a byte set from inclusive ranges, e.g. `[[0x30, 0x39]]` for the ASCII digits. */
export function byteSet(ranges: ReadonlyArray<readonly [number, number]>): ByteSet {
  const set = new Uint8Array(32);
  for (const [low, high] of ranges) {
    for (let b = low; b <= high; b++) set[b >> 3] |= 1 << (b & 7);
  }
  return set;
}

export function byteSetHas(set: ByteSet, byte: number): boolean {
  return ((set[byte >> 3] >> (byte & 7)) & 1) === 1;
}

const encoder = new TextEncoder();

/** One shared element per byte value, so literals allocate no byte sets. */
const SINGLE_BYTE: Element[] = Array.from({ length: 256 }, (_, b) => ({ kind: "bytes", set: byteSet([[b, b]]) }));

/** Returns the elements that match the UTF-8 bytes of `text` exactly. */
export function literal(text: string | Uint8Array): Element[] {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  return Array.from(bytes, (b) => SINGLE_BYTE[b]);
}

export function bytes(ranges: ReadonlyArray<readonly [number, number]>): Element {
  return { kind: "bytes", set: byteSet(ranges) };
}

export function ref(rule: number, min = 1, max = 1): Element {
  return { kind: "rule", rule, min, max };
}

export function token(id: number): Element {
  return { kind: "token", id };
}

/** Flattens elements and element lists into one sequence. */
export function sequence(...parts: Array<Element | Element[]>): Element[] {
  return parts.flat();
}

/**
 * Collects rules and flattens them into a GrammarIR. Rules may be reserved before they are
 * defined, which is how recursive grammars (JSON values, `$ref` cycles) are written.
 */
export class GrammarBuilder {
  private readonly names: string[] = [];
  private readonly definitions: Array<Element[][] | undefined> = [];
  private readonly nameCounts = new Map<string, number>();

  get ruleCount(): number {
    return this.names.length;
  }

  /** Reserves a rule id; the name gets a numeric suffix when it is taken already. */
  reserve(name: string): number {
    const seen = this.nameCounts.get(name) ?? 0;
    this.nameCounts.set(name, seen + 1);
    this.names.push(seen === 0 ? name : `${name}-${seen}`);
    this.definitions.push(undefined);
    return this.names.length - 1;
  }

  define(rule: number, alternatives: Element[][]): number {
    if (this.definitions[rule] !== undefined) {
      throw new GrammarBuildError(`grammar rule "${this.names[rule]}" is defined twice`);
    }
    this.definitions[rule] = alternatives;
    return rule;
  }

  /** Reserves and defines a rule in one step. */
  add(name: string, alternatives: Element[][]): number {
    return this.define(this.reserve(name), alternatives);
  }

  /** True when the rule is defined with no alternatives, so it can match nothing. */
  isEmptyRule(rule: number): boolean {
    return this.definitions[rule]?.length === 0;
  }

  ruleName(rule: number): string {
    return this.names[rule];
  }

  /**
   * Flattens the rules into a GrammarIR rooted at `root`. It drops alternatives that can never
   * finish, and rejects grammars the recognizer cannot run: left recursion and repetitions of a
   * rule that can match the empty input would make it loop.
   */
  build(root: number): GrammarIR {
    return flatten(this.validate(root), this.names, root);
  }

  /**
   * Checks the rules reachable from `root` the way build() does and raises GrammarBuildError on
   * the same problems, without flattening. Returns the rules with dead alternatives pruned.
   */
  validate(root: number): Element[][][] {
    // Rules the root cannot reach (left over from a schema that failed to compile) are emptied.
    const reachable = new Uint8Array(this.definitions.length);
    const queue = [root];
    reachable[root] = 1;
    while (queue.length > 0) {
      const rule = queue.pop()!;
      const alternatives = this.definitions[rule];
      if (alternatives === undefined) {
        throw new GrammarBuildError(`grammar rule "${this.names[rule]}" is referenced but never defined`);
      }
      for (const alternative of alternatives) {
        for (const element of alternative) {
          if (element.kind === "rule" && !reachable[element.rule]) {
            reachable[element.rule] = 1;
            queue.push(element.rule);
          }
        }
      }
    }
    const rules = this.definitions.map((alternatives, r) => (reachable[r] ? alternatives! : []));
    const productive = productiveRules(rules);
    if (!productive[root]) {
      throw new GrammarBuildError(`grammar rule "${this.names[root]}" cannot match any input (the schema is unsatisfiable)`);
    }
    const pruned = rules.map((alternatives) => pruneUnproductive(alternatives, productive));
    const nullable = nullableRules(pruned);
    checkRepetitions(pruned, nullable, this.names);
    checkLeftRecursion(pruned, nullable, this.names);
    return pruned;
  }
}

/** Marks the rules that can finish. An element can finish when it is a terminal, a repetition that may be skipped, or a productive rule. */
function productiveRules(rules: Element[][][]): boolean[] {
  const productive = new Array<boolean>(rules.length).fill(false);
  const elementProductive = (element: Element) =>
    element.kind !== "rule" || element.min === 0 || (element.min <= element.max && productive[element.rule]);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < rules.length; r++) {
      if (productive[r]) continue;
      if (rules[r].some((alternative) => alternative.every(elementProductive))) {
        productive[r] = true;
        changed = true;
      }
    }
  }
  return productive;
}

/** Drops alternatives that can never finish and turns optional references to such rules into no-ops. */
function pruneUnproductive(alternatives: Element[][], productive: boolean[]): Element[][] {
  const productiveAlternatives: Element[][] = [];
  for (const alternative of alternatives) {
    const elements: Element[] = [];
    let dead = false;
    for (const element of alternative) {
      if (element.kind !== "rule" || (productive[element.rule] && element.min <= element.max)) {
        elements.push(element);
      } else if (element.min === 0) {
        continue; // the repetition can only be taken zero times
      } else {
        dead = true;
        break;
      }
    }
    if (!dead) productiveAlternatives.push(elements);
  }
  return productiveAlternatives;
}

function nullableRules(rules: Element[][][]): boolean[] {
  const nullable = new Array<boolean>(rules.length).fill(false);
  const elementNullable = (element: Element) =>
    element.kind === "rule" && (element.min === 0 || nullable[element.rule]);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < rules.length; r++) {
      if (nullable[r]) continue;
      if (rules[r].some((alternative) => alternative.every(elementNullable))) {
        nullable[r] = true;
        changed = true;
      }
    }
  }
  return nullable;
}

function checkRepetitions(rules: Element[][][], nullable: boolean[], names: string[]): void {
  for (let r = 0; r < rules.length; r++) {
    for (const alternative of rules[r]) {
      for (const element of alternative) {
        if (element.kind !== "rule") continue;
        if (element.max > MAX_REPETITION) {
          throw new GrammarBuildError(
            `grammar rule "${names[r]}" repeats "${names[element.rule]}" up to ${element.max} times, above the limit of ${MAX_REPETITION}`,
          );
        }
        if (element.max > 1 && nullable[element.rule]) {
          throw new GrammarBuildError(
            `grammar rule "${names[r]}" repeats "${names[element.rule]}", which can match the empty input, so the repetition is ambiguous`,
          );
        }
      }
    }
  }
}

/** Rejects rules that can reach themselves without consuming a byte or a token. */
function checkLeftRecursion(rules: Element[][][], nullable: boolean[], names: string[]): void {
  const leftEdges = rules.map((alternatives) => {
    const targets = new Set<number>();
    for (const alternative of alternatives) {
      for (const element of alternative) {
        if (element.kind !== "rule") break;
        targets.add(element.rule);
        if (!(element.min === 0 || nullable[element.rule])) break;
      }
    }
    return [...targets];
  });

  const state = new Uint8Array(rules.length); // 0 unvisited, 1 on the current path, 2 done
  for (let start = 0; start < rules.length; start++) {
    if (state[start] !== 0) continue;
    const stack: Array<{ rule: number; next: number }> = [{ rule: start, next: 0 }];
    state[start] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next >= leftEdges[top.rule].length) {
        state[top.rule] = 2;
        stack.pop();
        continue;
      }
      const target = leftEdges[top.rule][top.next++];
      if (state[target] === 1) {
        throw new GrammarBuildError(
          `grammar rule "${names[target]}" is left-recursive (it can reach itself through "${names[top.rule]}" without consuming input)`,
        );
      }
      if (state[target] === 0) {
        state[target] = 1;
        stack.push({ rule: target, next: 0 });
      }
    }
  }
}

function flatten(rules: Element[][][], names: string[], root: number): GrammarIR {
  const setIndex = new Map<string, number>();
  const setIndexByObject = new Map<ByteSet, number>();
  const setChunks: Uint8Array[] = [];
  const indexOfSet = (set: ByteSet): number => {
    let index = setIndexByObject.get(set);
    if (index !== undefined) return index;
    const key = String.fromCharCode(...set);
    index = setIndex.get(key);
    if (index === undefined) {
      index = setChunks.length;
      setIndex.set(key, index);
      setChunks.push(set);
    }
    setIndexByObject.set(set, index);
    return index;
  };

  const ruleAltStart: number[] = [];
  const altElementStart: number[] = [];
  const kinds: number[] = [];
  const values: number[] = [];
  const mins: number[] = [];
  const maxes: number[] = [];
  for (const alternatives of rules) {
    ruleAltStart.push(altElementStart.length);
    for (const alternative of alternatives) {
      altElementStart.push(kinds.length);
      for (const element of alternative) {
        if (element.kind === "bytes") {
          kinds.push(ElementKind.Bytes);
          values.push(indexOfSet(element.set));
          mins.push(1);
          maxes.push(1);
        } else if (element.kind === "rule") {
          kinds.push(ElementKind.Rule);
          values.push(element.rule);
          mins.push(element.min);
          maxes.push(element.max);
        } else {
          kinds.push(ElementKind.Token);
          values.push(element.id);
          mins.push(1);
          maxes.push(1);
        }
      }
      kinds.push(ElementKind.End);
      values.push(0);
      mins.push(1);
      maxes.push(1);
    }
  }
  ruleAltStart.push(altElementStart.length);

  const byteSets = new Uint8Array(setChunks.length * 32);
  setChunks.forEach((set, i) => byteSets.set(set, i * 32));
  return {
    version: 1,
    ruleNames: names.slice(),
    ruleAltStart: Uint32Array.from(ruleAltStart),
    altElementStart: Uint32Array.from(altElementStart),
    elementKind: Uint8Array.from(kinds),
    elementValue: Uint32Array.from(values),
    elementMin: Uint32Array.from(mins),
    elementMax: Uint32Array.from(maxes),
    byteSets,
    root,
  };
}

/** Renders the grammar in a GBNF-like text form, for debugging and error messages. */
export function formatGrammar(grammar: GrammarIR): string {
  const lines: string[] = [];
  const describeSet = (index: number): string => {
    const ranges: string[] = [];
    for (let b = 0; b < 256; b++) {
      if (!((grammar.byteSets[index * 32 + (b >> 3)] >> (b & 7)) & 1)) continue;
      let end = b;
      while (end + 1 < 256 && (grammar.byteSets[index * 32 + ((end + 1) >> 3)] >> ((end + 1) & 7)) & 1) end++;
      const hex = (x: number) => `\\x${x.toString(16).padStart(2, "0")}`;
      ranges.push(b === end ? hex(b) : `${hex(b)}-${hex(end)}`);
      b = end;
    }
    return `[${ranges.join("")}]`;
  };
  for (let r = 0; r < grammar.ruleNames.length; r++) {
    const alternatives: string[] = [];
    for (let a = grammar.ruleAltStart[r]; a < grammar.ruleAltStart[r + 1]; a++) {
      const parts: string[] = [];
      for (let e = grammar.altElementStart[a]; grammar.elementKind[e] !== ElementKind.End; e++) {
        const value = grammar.elementValue[e];
        if (grammar.elementKind[e] === ElementKind.Bytes) parts.push(describeSet(value));
        else if (grammar.elementKind[e] === ElementKind.Token) parts.push(`<token ${value}>`);
        else {
          const min = grammar.elementMin[e];
          const max = grammar.elementMax[e];
          const suffix = min === 1 && max === 1 ? "" : `{${min},${max}}`;
          parts.push(`${grammar.ruleNames[value]}${suffix}`);
        }
      }
      alternatives.push(parts.length > 0 ? parts.join(" ") : "ε");
    }
    lines.push(`${grammar.ruleNames[r]} ::= ${alternatives.join(" | ")}`);
  }
  return lines.join("\n");
}

/** Converts the grammar to plain JSON (typed arrays become number arrays), e.g. to store or send it. */
export function grammarToJson(grammar: GrammarIR): Record<string, unknown> {
  return {
    version: grammar.version,
    ruleNames: grammar.ruleNames,
    ruleAltStart: Array.from(grammar.ruleAltStart),
    altElementStart: Array.from(grammar.altElementStart),
    elementKind: Array.from(grammar.elementKind),
    elementValue: Array.from(grammar.elementValue),
    elementMin: Array.from(grammar.elementMin),
    elementMax: Array.from(grammar.elementMax),
    byteSets: Array.from(grammar.byteSets),
    root: grammar.root,
  };
}

/** Reads a grammar written by grammarToJson, checking that every index is in range. */
export function grammarFromJson(json: Record<string, unknown>): GrammarIR {
  const numbers = (key: string): number[] => {
    const value = json[key];
    if (!Array.isArray(value) || !value.every((x) => Number.isInteger(x) && x >= 0)) {
      throw new GrammarBuildError(`grammar JSON: "${key}" must be an array of non-negative integers`);
    }
    return value;
  };
  if (json.version !== 1) throw new GrammarBuildError(`grammar JSON: version ${JSON.stringify(json.version)} is not supported (expected 1)`);
  const grammar: GrammarIR = {
    version: 1,
    ruleNames: Array.isArray(json.ruleNames) ? json.ruleNames.map(String) : [],
    ruleAltStart: Uint32Array.from(numbers("ruleAltStart")),
    altElementStart: Uint32Array.from(numbers("altElementStart")),
    elementKind: Uint8Array.from(numbers("elementKind")),
    elementValue: Uint32Array.from(numbers("elementValue")),
    elementMin: Uint32Array.from(numbers("elementMin")),
    elementMax: Uint32Array.from(numbers("elementMax")),
    byteSets: Uint8Array.from(numbers("byteSets")),
    root: Number(json.root),
  };
  const rules = grammar.ruleAltStart.length - 1;
  const elements = grammar.elementKind.length;
  const fail = (problem: string) => {
    throw new GrammarBuildError(`grammar JSON: ${problem}`);
  };
  if (rules < 1 || grammar.ruleNames.length !== rules) fail(`ruleNames has ${grammar.ruleNames.length} entries for ${rules} rules`);
  if (!(grammar.root >= 0 && grammar.root < rules)) fail(`root ${grammar.root} is not a rule index below ${rules}`);
  if (grammar.ruleAltStart[rules] !== grammar.altElementStart.length) fail("ruleAltStart does not end at the number of alternatives");
  for (const key of ["elementValue", "elementMin", "elementMax"] as const) {
    if (grammar[key].length !== elements) fail(`${key} has ${grammar[key].length} entries for ${elements} elements`);
  }
  if (grammar.byteSets.length % 32 !== 0) fail(`byteSets length ${grammar.byteSets.length} is not a multiple of 32`);
  for (let a = 0; a < grammar.altElementStart.length; a++) {
    let e = grammar.altElementStart[a];
    while (e < elements && grammar.elementKind[e] !== ElementKind.End) e++;
    if (e >= elements) fail(`alternative ${a} has no End element`);
  }
  for (let e = 0; e < elements; e++) {
    const kind = grammar.elementKind[e];
    const value = grammar.elementValue[e];
    if (kind > ElementKind.Token) fail(`element ${e} has unknown kind ${kind}`);
    if (kind === ElementKind.Bytes && value * 32 >= grammar.byteSets.length) fail(`element ${e} uses byte set ${value}, which does not exist`);
    if (kind === ElementKind.Rule && value >= rules) fail(`element ${e} refers to rule ${value}, which does not exist`);
    if (kind === ElementKind.Rule && grammar.elementMax[e] > MAX_REPETITION) fail(`element ${e} repeats up to ${grammar.elementMax[e]} times, above ${MAX_REPETITION}`);
  }
  return grammar;
}
