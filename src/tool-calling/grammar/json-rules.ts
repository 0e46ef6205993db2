// Grammar rules for the pieces of JSON text: whitespace, string characters, strings, numbers and
// "any JSON value". Rules are created once per builder and shared by every schema compiled into it.

import { ALL_SCALARS, codePointSet, contains, intersect, subtract, utf8Sequences, type CodePointSet } from "./code-points.js";
import { bytes, literal, ref, type Element, type GrammarBuilder } from "./ir.js";
import { decimalRange, integerRange, nonNegativeIntegerRange, type DecimalBounds } from "./number-range.js";

/** Limits that keep every grammar finite, so a generation can always finish within its token budget. */
export interface JsonGrammarOptions {
  /**
   * Maximum whitespace bytes in a row between JSON tokens (default 4). A random or confused model
   * otherwise emits whitespace forever; pretty-printed JSON with deep indentation needs more.
   */
  maxWhitespace?: number;
  /**
   * Maximum characters of a string whose schema has no `maxLength` (default 4096). Longer strings
   * cannot be generated under the grammar; raise it for tools that take whole files as arguments.
   */
  maxStringLength?: number;
  /** Maximum items of an array whose schema has no `maxItems` (default 256). */
  maxArrayItems?: number;
  /** Maximum members of an object with free-form keys (additional properties, any value) (default 64). */
  maxObjectMembers?: number;
  /** Maximum digits of the integer part of a number without an upper bound (default 16). */
  maxIntegerDigits?: number;
  /** Maximum digits after the decimal point (default 16). */
  maxFractionDigits?: number;
}

export const JSON_GRAMMAR_DEFAULTS: Required<JsonGrammarOptions> = {
  maxWhitespace: 4,
  maxStringLength: 4096,
  maxArrayItems: 256,
  maxObjectMembers: 64,
  maxIntegerDigits: 16,
  maxFractionDigits: 16,
};

/** The short escapes of JSON strings and the code point each one stands for. */
const SHORT_ESCAPES: ReadonlyArray<readonly [number, string]> = [
  [0x22, '"'],
  [0x5c, "\\"],
  [0x2f, "/"],
  [0x08, "b"],
  [0x0c, "f"],
  [0x0a, "n"],
  [0x0d, "r"],
  [0x09, "t"],
];

/** Code points that JSON requires to be escaped inside strings. */
const MUST_ESCAPE: CodePointSet = codePointSet([
  [0x00, 0x1f],
  [0x22, 0x22],
  [0x5c, 0x5c],
]);

const HEX: Element = bytes([
  [0x30, 0x39],
  [0x41, 0x46],
  [0x61, 0x66],
]);

export class JsonRules {
  readonly builder: GrammarBuilder;
  readonly options: Required<JsonGrammarOptions>;
  private readonly cache = new Map<string, number>();

  constructor(builder: GrammarBuilder, options: JsonGrammarOptions = {}) {
    this.builder = builder;
    this.options = { ...JSON_GRAMMAR_DEFAULTS, ...options };
  }

  private cached(key: string, create: () => number): number {
    let rule = this.cache.get(key);
    if (rule === undefined) {
      rule = create();
      this.cache.set(key, rule);
    }
    return rule;
  }

  /** Optional whitespace: up to `maxWhitespace` of space, tab, line feed and carriage return. */
  ws(): Element {
    const rule = this.cached("ws", () =>
      this.builder.add("ws-byte", [
        [
          bytes([
            [0x20, 0x20],
            [0x09, 0x0a],
            [0x0d, 0x0d],
          ]),
        ],
      ]),
    );
    return ref(rule, 0, this.options.maxWhitespace);
  }

  /**
   * A rule matching one string character whose decoded code point is in `set`, written raw (UTF-8)
   * when JSON allows it and escaped when it must be. With `unicodeEscapes`, `\uXXXX` escapes of any
   * non-surrogate code point in the Basic Multilingual Plane are accepted too (only valid when the
   * set contains all of them).
   */
  character(set: CodePointSet, unicodeEscapes = false): number {
    const key = `char:${unicodeEscapes}:${JSON.stringify(set)}`;
    return this.cached(key, () => {
      const alternatives: Element[][] = groupUtf8(subtract(intersect(set, ALL_SCALARS), MUST_ESCAPE));
      const escapes: Element[][] = [];
      for (const [codePoint, letter] of SHORT_ESCAPES) {
        if (contains(set, codePoint)) escapes.push(literal(letter));
      }
      if (unicodeEscapes) {
        escapes.push(...nonSurrogateUnicodeEscapes());
      } else {
        for (let c = 0; c < 0x20; c++) {
          if (!contains(set, c) || SHORT_ESCAPES.some(([escaped]) => escaped === c)) continue;
          const hex = c.toString(16).padStart(4, "0");
          escapes.push([...literal("u00"), ...literal(hex[2]), caseInsensitiveHexDigit(hex[3])]);
        }
      }
      if (escapes.length > 0) {
        const escape = this.builder.add("string-escape", escapes);
        alternatives.push([...literal("\\"), ref(escape)]);
      }
      return this.builder.add("string-char", alternatives);
    });
  }

  /** Any string character; `\uXXXX` escapes count as one character. */
  anyCharacter(): number {
    return this.character(ALL_SCALARS, true);
  }

  /** Returns a rule for a JSON string of `minLength` to `maxLength` characters (null: up to maxStringLength). */
  string(minLength = 0, maxLength: number | null = null): number {
    const max = maxLength ?? Math.max(minLength, this.options.maxStringLength);
    return this.cached(`string:${minLength}:${max}`, () =>
      this.builder.add("string", [[...literal('"'), ref(this.anyCharacter(), minLength, max), ...literal('"')]]),
    );
  }

  /** Returns a rule for a JSON string whose content matches `content` (a rule over string characters). */
  stringOf(content: number, name: string): number {
    return this.builder.add(name, [[...literal('"'), ref(content), ...literal('"')]]);
  }

  /** Returns a rule for an integer in [low, high], where a null bound is open. */
  integer(low: bigint | null = null, high: bigint | null = null): number {
    return this.cached(`integer:${low}:${high}`, () =>
      this.builder.add("integer", integerRange(low, high, this.options.maxIntegerDigits)),
    );
  }

  /** Any JSON number, with optional fraction and exponent. */
  number(): number {
    return this.cached("number", () => {
      const exponent = this.builder.add("number-exponent", [
        [bytes([[0x45, 0x45], [0x65, 0x65]]), ref(this.sign(), 0, 1), ref(this.digit(), 1, 2)],
      ]);
      const magnitude = this.builder.add("number-integer-part", nonNegativeIntegerRange(0n, null, this.options.maxIntegerDigits));
      return this.builder.add("number", [
        [ref(this.minus(), 0, 1), ref(magnitude), ref(this.fraction(), 0, 1), ref(exponent, 0, 1)],
      ]);
    });
  }

  /** Returns a rule for a JSON number inside the bounds, without exponent (decimalRange lists what it leaves out). */
  boundedNumber(bounds: DecimalBounds): number {
    const key = `number:${JSON.stringify(bounds)}`;
    return this.cached(key, () =>
      this.builder.add("number", decimalRange(bounds, this.options.maxIntegerDigits, [ref(this.fraction(), 0, 1)], [ref(this.nonZeroFraction())])),
    );
  }

  /** Returns a rule for the literal JSON text of a constant value. */
  constant(value: unknown): number {
    const text = JSON.stringify(value);
    return this.cached(`const:${text}`, () => this.builder.add("const", [literal(text)]));
  }

  /** Any JSON value, with strings, arrays and objects capped by the options. */
  anyValue(): number {
    const existing = this.cache.get("any");
    if (existing !== undefined) return existing;
    const value = this.builder.reserve("any-value");
    this.cache.set("any", value);
    const cap = this.options;

    const member = this.builder.add("any-member", [
      [ref(this.string()), this.ws(), ...literal(":"), this.ws(), ref(value), this.ws()],
    ]);
    const moreMembers = this.builder.add("any-member-more", [[...literal(","), this.ws(), ref(member)]]);
    const members = this.builder.add("any-members", [[ref(member), ref(moreMembers, 0, cap.maxObjectMembers - 1)]]);
    const object = this.builder.add("any-object", [[...literal("{"), this.ws(), ref(members, 0, 1), ...literal("}")]]);
    this.cache.set("any-object", object);

    const item = this.builder.add("any-item", [[ref(value), this.ws()]]);
    const moreItems = this.builder.add("any-item-more", [[...literal(","), this.ws(), ref(item)]]);
    const items = this.builder.add("any-items", [[ref(item), ref(moreItems, 0, cap.maxArrayItems - 1)]]);
    const array = this.builder.add("any-array", [[...literal("["), this.ws(), ref(items, 0, 1), ...literal("]")]]);

    this.builder.define(value, [
      [ref(object)],
      [ref(array)],
      [ref(this.string())],
      [ref(this.number())],
      literal("true"),
      literal("false"),
      literal("null"),
    ]);
    return value;
  }

  /** Any JSON object. */
  anyObject(): number {
    this.anyValue();
    return this.cache.get("any-object")!;
  }

  boolean(): number {
    return this.cached("boolean", () => this.builder.add("boolean", [literal("true"), literal("false")]));
  }

  null(): number {
    return this.cached("null", () => this.builder.add("null", [literal("null")]));
  }

  private digit(): number {
    return this.cached("digit", () => this.builder.add("digit", [[bytes([[0x30, 0x39]])]]));
  }

  private minus(): number {
    return this.cached("minus", () => this.builder.add("minus", [literal("-")]));
  }

  private sign(): number {
    return this.cached("sign", () => this.builder.add("sign", [[bytes([[0x2b, 0x2b], [0x2d, 0x2d]])]]));
  }

  private fraction(): number {
    return this.cached("fraction", () =>
      this.builder.add("number-fraction", [[...literal("."), ref(this.digit(), 1, this.options.maxFractionDigits)]]),
    );
  }

  /** Returns a rule for a fraction part whose last digit is not zero, so its value is above zero. */
  private nonZeroFraction(): number {
    return this.cached("non-zero-fraction", () =>
      this.builder.add("number-non-zero-fraction", [
        [...literal("."), ref(this.digit(), 0, this.options.maxFractionDigits - 1), bytes([[0x31, 0x39]])],
      ]),
    );
  }
}

/**
 * Turns a code point set into UTF-8 alternatives, merging single-byte ranges into one byte set
 * and multi-byte shapes that share their continuation bytes, which keeps the recognizer's stack
 * set small at the start of each character.
 */
function groupUtf8(set: CodePointSet): Element[][] {
  const singleBytes: Array<[number, number]> = [];
  const byTail = new Map<string, { first: Array<[number, number]>; tail: Array<[number, number]> }>();
  for (const sequence of utf8Sequences(set)) {
    if (sequence.length === 1) {
      singleBytes.push(sequence[0]);
      continue;
    }
    const tail = sequence.slice(1);
    const key = JSON.stringify(tail);
    const group = byTail.get(key);
    if (group) group.first.push(sequence[0]);
    else byTail.set(key, { first: [sequence[0]], tail });
  }
  const alternatives: Element[][] = [];
  if (singleBytes.length > 0) alternatives.push([bytes(singleBytes)]);
  for (const { first, tail } of byTail.values()) {
    alternatives.push([bytes(first), ...tail.map((range) => bytes([range]))]);
  }
  return alternatives;
}

/** `uXXXX` (after the backslash) for every code point outside the surrogate range D800-DFFF. */
function nonSurrogateUnicodeEscapes(): Element[][] {
  const u = literal("u");
  return [
    [...u, bytes([[0x30, 0x39], [0x41, 0x43], [0x61, 0x63]]), HEX, HEX, HEX],
    [...u, bytes([[0x44, 0x44], [0x64, 0x64]]), bytes([[0x30, 0x37]]), HEX, HEX],
    [...u, bytes([[0x45, 0x46], [0x65, 0x66]]), HEX, HEX, HEX],
  ];
}

function caseInsensitiveHexDigit(digit: string): Element {
  const lower = digit.toLowerCase().charCodeAt(0);
  const upper = digit.toUpperCase().charCodeAt(0);
  return bytes([
    [lower, lower],
    [upper, upper],
  ]);
}
