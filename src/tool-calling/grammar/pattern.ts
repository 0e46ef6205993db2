// Compiles the regular expressions of JSON Schema `pattern` (ECMAScript syntax, matched with the
// "u" flag as ajv does) into grammar rules over JSON string characters.
//
// Supported: literals, escapes, `.`, classes `[...]` with ranges and negation, `\d \D \w \W \s \S`,
// groups `(...)`, `(?:...)` and `(?<name>...)`, alternation, quantifiers `* + ? {n} {n,} {n,m}`
// (lazy and greedy alike) and the anchors `^` at the start and `$` at the end. Anything else
// (backreferences, lookaround, word boundaries, `\p{...}`) raises PatternError. JSON Schema
// patterns are not anchored, so a missing `^` or `$` allows any characters on that side.

import { ALL_SCALARS, codePointSet, complement, union, withAsciiCaseVariants, type CodePointSet } from "./code-points.js";
import { ref, type Element, type GrammarBuilder } from "./ir.js";

export class PatternError extends Error {
  constructor(pattern: string, position: number, reason: string) {
    super(`pattern ${JSON.stringify(pattern)} at offset ${position}: ${reason}`);
    this.name = "PatternError";
  }
}

type Node =
  | { kind: "chars"; set: CodePointSet }
  | { kind: "sequence"; items: Node[] }
  | { kind: "alternation"; options: Node[] }
  | { kind: "repeat"; node: Node; min: number; max: number | null };

const DIGITS: CodePointSet = [[0x30, 0x39]];
const WORD: CodePointSet = codePointSet([
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
]);
/** ECMAScript WhiteSpace and LineTerminator code points. */
const SPACE: CodePointSet = codePointSet([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);
const LINE_TERMINATORS: CodePointSet = codePointSet([
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
]);

class Parser {
  private position = 0;
  private readonly codePoints: number[];
  anchoredStart = false;
  anchoredEnd = false;

  constructor(private readonly source: string) {
    this.codePoints = Array.from(source, (c) => c.codePointAt(0)!);
  }

  parse(): Node {
    if (this.peek() === 0x5e /* ^ */) {
      this.anchoredStart = true;
      this.position++;
    }
    const node = this.alternation();
    if (this.position < this.codePoints.length) this.fail("unbalanced ')'");
    return node;
  }

  private fail(reason: string): never {
    throw new PatternError(this.source, this.position, reason);
  }

  private peek(offset = 0): number | undefined {
    return this.codePoints[this.position + offset];
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.peek() === 0x7c /* | */) {
      this.position++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { kind: "alternation", options };
  }

  private sequence(): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 0x7c || c === 0x29 /* ) */) break;
      if (c === 0x24 /* $ */) {
        const atEnd = this.position === this.codePoints.length - 1;
        if (!atEnd) this.fail("'$' is supported only at the end of the pattern");
        this.anchoredEnd = true;
        this.position++;
        break;
      }
      if (c === 0x5e /* ^ */) this.fail("'^' is supported only at the start of the pattern");
      items.push(this.quantified(this.atom()));
    }
    return items.length === 1 ? items[0] : { kind: "sequence", items };
  }

  private quantified(node: Node): Node {
    const c = this.peek();
    let min: number;
    let max: number | null;
    if (c === 0x2a /* * */) [min, max] = [0, null];
    else if (c === 0x2b /* + */) [min, max] = [1, null];
    else if (c === 0x3f /* ? */) [min, max] = [0, 1];
    else if (c === 0x7b /* { */ && this.braceQuantifierAhead()) {
      this.position++;
      min = this.integer();
      max = min;
      if (this.peek() === 0x2c /* , */) {
        this.position++;
        max = this.peek() === 0x7d ? null : this.integer();
      }
      if (this.peek() !== 0x7d) this.fail("unterminated '{' quantifier");
      if (max !== null && max < min) this.fail(`quantifier {${min},${max}} has its bounds out of order`);
    } else {
      return node;
    }
    this.position++;
    if (this.peek() === 0x3f /* lazy ? */) this.position++;
    return this.quantified({ kind: "repeat", node, min, max });
  }

  private braceQuantifierAhead(): boolean {
    let i = this.position + 1;
    let digits = 0;
    while (this.codePoints[i] !== undefined && this.codePoints[i] >= 0x30 && this.codePoints[i] <= 0x39) {
      i++;
      digits++;
    }
    return digits > 0 && (this.codePoints[i] === 0x7d || this.codePoints[i] === 0x2c);
  }

  private integer(): number {
    const start = this.position;
    while (this.peek() !== undefined && this.peek()! >= 0x30 && this.peek()! <= 0x39) this.position++;
    if (start === this.position) this.fail("expected a number");
    return Number(String.fromCodePoint(...this.codePoints.slice(start, this.position)));
  }

  private atom(): Node {
    const c = this.peek()!;
    if (c === 0x28 /* ( */) {
      this.position++;
      if (this.peek() === 0x3f /* ? */) {
        const next = this.peek(1);
        if (next === 0x3a /* : */) this.position += 2;
        else if (next === 0x3c /* < */ && this.peek(2) !== 0x3d && this.peek(2) !== 0x21) {
          this.position += 2;
          while (this.peek() !== undefined && this.peek() !== 0x3e) this.position++;
          this.position++;
        } else this.fail("lookaround assertions are not supported");
      }
      const inner = this.alternation();
      if (this.peek() !== 0x29) this.fail("missing ')'");
      this.position++;
      return inner;
    }
    if (c === 0x5b /* [ */) return { kind: "chars", set: this.characterClass() };
    if (c === 0x2e /* . */) {
      this.position++;
      return { kind: "chars", set: complement(LINE_TERMINATORS) };
    }
    if (c === 0x5c /* \ */) return { kind: "chars", set: this.escape(false) };
    if (c === 0x2a || c === 0x2b || c === 0x3f) this.fail("quantifier without a preceding atom");
    this.position++;
    return { kind: "chars", set: [[c, c]] };
  }

  private characterClass(): CodePointSet {
    this.position++; // [
    let negated = false;
    if (this.peek() === 0x5e) {
      negated = true;
      this.position++;
    }
    let set: CodePointSet = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail("unterminated character class");
      if (c === 0x5d /* ] */ && !first) break;
      first = false;
      const low = this.classAtom();
      if (this.peek() === 0x2d /* - */ && this.peek(1) !== 0x5d && this.peek(1) !== undefined) {
        this.position++;
        const high = this.classAtom();
        if (low.length !== 1 || high.length !== 1 || low[0][0] !== low[0][1] || high[0][0] !== high[0][1]) {
          this.fail("a class escape cannot be a range bound");
        }
        if (high[0][0] < low[0][0]) this.fail("character class range out of order");
        set = union(set, [[low[0][0], high[0][0]]]);
      } else {
        set = union(set, low);
      }
    }
    this.position++; // ]
    return negated ? complement(set) : set;
  }

  private classAtom(): CodePointSet {
    const c = this.peek()!;
    if (c === 0x5c) return this.escape(true);
    this.position++;
    return [[c, c]];
  }

  private escape(inClass: boolean): CodePointSet {
    this.position++; // backslash
    const c = this.peek();
    if (c === undefined) this.fail("pattern ends with a backslash");
    this.position++;
    const letter = String.fromCodePoint(c);
    switch (letter) {
      case "d":
        return DIGITS;
      case "D":
        return complement(DIGITS);
      case "w":
        return WORD;
      case "W":
        return complement(WORD);
      case "s":
        return SPACE;
      case "S":
        return complement(SPACE);
      case "n":
        return [[0x0a, 0x0a]];
      case "r":
        return [[0x0d, 0x0d]];
      case "t":
        return [[0x09, 0x09]];
      case "f":
        return [[0x0c, 0x0c]];
      case "v":
        return [[0x0b, 0x0b]];
      case "0":
        return [[0, 0]];
      case "x":
        return this.hexEscape(2);
      case "u":
        if (this.peek() === 0x7b) return this.bracedHexEscape();
        return this.hexEscape(4);
      case "b":
        if (inClass) return [[0x08, 0x08]];
        return this.fail("word boundaries (\\b) are not supported");
      case "c": {
        const control = this.peek();
        if (control === undefined || !/[A-Za-z]/.test(String.fromCodePoint(control))) this.fail("invalid \\c escape");
        this.position++;
        return [[control % 32, control % 32]];
      }
      default:
        if (/[1-9]/.test(letter)) this.fail("backreferences are not supported");
        if (letter === "p" || letter === "P") this.fail("Unicode property escapes are not supported");
        if (letter === "B" || letter === "k") this.fail(`\\${letter} is not supported`);
        if (/[A-Za-z]/.test(letter)) this.fail(`unknown escape \\${letter}`);
        return [[c, c]];
    }
  }

  private hexEscape(digits: number): CodePointSet {
    const text = String.fromCodePoint(...this.codePoints.slice(this.position, this.position + digits));
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(text)) this.fail(`expected ${digits} hex digits`);
    this.position += digits;
    const value = parseInt(text, 16);
    return [[value, value]];
  }

  private bracedHexEscape(): CodePointSet {
    const end = this.codePoints.indexOf(0x7d, this.position);
    if (end < 0) this.fail("unterminated \\u{...} escape");
    const text = String.fromCodePoint(...this.codePoints.slice(this.position + 1, end));
    if (!/^[0-9a-fA-F]{1,6}$/.test(text)) this.fail("invalid \\u{...} escape");
    this.position = end + 1;
    const value = parseInt(text, 16);
    return [[value, value]];
  }
}

/** Returns whether a node can match the empty string. */
function nullable(node: Node): boolean {
  switch (node.kind) {
    case "chars":
      return false;
    case "sequence":
      return node.items.every(nullable);
    case "alternation":
      return node.options.some(nullable);
    case "repeat":
      return node.min === 0 || nullable(node.node);
  }
}

export interface PatternCompileOptions {
  /** Rule for one string character from a code point set (raw or escaped JSON). */
  character: (set: CodePointSet) => number;
  /** Replaces unbounded quantifiers (`*`, `+`, `{n,}`). */
  maxRepetition: number;
  caseInsensitive?: boolean;
}

/**
 * Compiles `pattern` into a rule matching the content of a JSON string (without the quotes).
 * Raises PatternError for syntax this compiler does not support.
 */
export function compilePattern(builder: GrammarBuilder, pattern: string, options: PatternCompileOptions): number {
  const parser = new Parser(pattern);
  const tree = parser.parse();
  const anyCharacters: Node = { kind: "repeat", node: { kind: "chars", set: ALL_SCALARS }, min: 0, max: null };
  const items: Node[] = [];
  if (!parser.anchoredStart) items.push(anyCharacters);
  items.push(tree);
  if (!parser.anchoredEnd) items.push(anyCharacters);

  const emit = (node: Node): Element[] => {
    switch (node.kind) {
      case "chars": {
        const set = options.caseInsensitive ? withAsciiCaseVariants(node.set) : node.set;
        if (set.length === 0) throw new PatternError(pattern, 0, "a character class matches nothing");
        return [ref(options.character(set))];
      }
      case "sequence":
        return node.items.flatMap(emit);
      case "alternation":
        return [ref(builder.add("pattern-group", node.options.map(emit)))];
      case "repeat": {
        const max = node.max ?? Math.max(node.min, options.maxRepetition);
        if (max > 1 && nullable(node.node)) {
          throw new PatternError(pattern, 0, "a repeated group can match the empty string");
        }
        const inner = builder.add("pattern-repeat", [emit(node.node)]);
        return [ref(inner, node.min, max)];
      }
    }
  };
  return builder.add("pattern", [items.flatMap(emit)]);
}
