// A forgiving JSON reader for the text small models write inside <tool_call> blocks.
//
// It accepts everything JSON.parse accepts, plus the slips seen in tool-calling output: trailing
// commas, single-quoted strings, unquoted object keys, Python literals (True, False, None), raw
// newlines and tabs inside strings, several top-level values in a row, and (when asked) closing
// brackets missing at the end of the text. It never guesses inside a value: a string or number
// cut off in the middle is still an error.

/** The result of a lenient parse: the values, or a message that names the position and the rule. */
export type LenientJsonResult = { ok: true; values: unknown[] } | { ok: false; message: string };

export interface LenientJsonOptions {
  /**
   * Close objects and arrays still open when the text ends, but only right after a complete value
   * (default false). Small models often drop the last `}`; a value cut off mid-way stays an error.
   */
  closeUnterminated?: boolean;
}

class JsonSyntaxError extends Error {}

const identifierStart = /[\p{L}_$]/u;
const identifierPart = /[\p{L}\p{N}_$-]/u;

/** Recursive-descent reader over one string; `position` is a UTF-16 index. */
class LenientJsonReader {
  private position = 0;

  constructor(
    private readonly text: string,
    private readonly closeUnterminated: boolean,
  ) {}

  /** Reads every top-level value; values may be separated by whitespace, commas or newlines. */
  readValues(): unknown[] {
    const values: unknown[] = [];
    this.skipWhitespace();
    while (this.position < this.text.length) {
      values.push(this.readValue());
      this.skipWhitespace();
      if (this.text[this.position] === ",") {
        this.position += 1;
        this.skipWhitespace();
      }
    }
    if (values.length === 0) throw this.error("expected a JSON value but the text is empty");
    return values;
  }

  private readValue(): unknown {
    this.skipWhitespace();
    const char = this.text[this.position];
    if (char === undefined) throw this.error("expected a value but the text ended");
    if (char === "{") return this.readObject();
    if (char === "[") return this.readArray();
    if (char === '"' || char === "'") return this.readString();
    if (char === "-" || char === "+" || (char >= "0" && char <= "9") || char === ".") return this.readNumber();
    if (identifierStart.test(char)) return this.readLiteral();
    throw this.error(`unexpected character ${JSON.stringify(char)}`);
  }

  private readObject(): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    this.position += 1; // "{"
    for (;;) {
      this.skipWhitespace();
      const char = this.text[this.position];
      if (char === "}") {
        this.position += 1;
        return result;
      }
      if (char === undefined) {
        if (this.closeUnterminated) return result;
        throw this.error('expected "}" but the text ended');
      }

      const key = this.readKey();
      this.skipWhitespace();
      if (this.text[this.position] !== ":") throw this.error(`expected ":" after the key ${JSON.stringify(key)}`);
      this.position += 1;
      // defineProperty keeps a "__proto__" key as a plain property instead of changing the prototype.
      Object.defineProperty(result, key, { value: this.readValue(), enumerable: true, writable: true, configurable: true });

      this.skipWhitespace();
      const next = this.text[this.position];
      if (next === ",") {
        this.position += 1;
      } else if (next === "}") {
        this.position += 1;
        return result;
      } else if (next === undefined) {
        if (this.closeUnterminated) return result;
        throw this.error('expected "," or "}" but the text ended');
      } else {
        throw this.error(`expected "," or "}" after the value of ${JSON.stringify(key)}`);
      }
    }
  }

  private readArray(): unknown[] {
    const result: unknown[] = [];
    this.position += 1; // "["
    for (;;) {
      this.skipWhitespace();
      const char = this.text[this.position];
      if (char === "]") {
        this.position += 1;
        return result;
      }
      if (char === undefined) {
        if (this.closeUnterminated) return result;
        throw this.error('expected "]" but the text ended');
      }

      result.push(this.readValue());

      this.skipWhitespace();
      const next = this.text[this.position];
      if (next === ",") {
        this.position += 1;
      } else if (next === "]") {
        this.position += 1;
        return result;
      } else if (next === undefined) {
        if (this.closeUnterminated) return result;
        throw this.error('expected "," or "]" but the text ended');
      } else {
        throw this.error('expected "," or "]" after an array element');
      }
    }
  }

  private readKey(): string {
    const char = this.text[this.position];
    if (char === '"' || char === "'") return this.readString();
    if (char !== undefined && identifierStart.test(char)) {
      const start = this.position;
      while (this.position < this.text.length && identifierPart.test(this.text[this.position])) this.position += 1;
      return this.text.slice(start, this.position);
    }
    throw this.error("expected a property name in double quotes");
  }

  private readString(): string {
    const quote = this.text[this.position];
    this.position += 1;
    let result = "";
    for (;;) {
      const char = this.text[this.position];
      if (char === undefined) throw this.error("a string is not terminated (the text ended inside it)");
      this.position += 1;
      if (char === quote) return result;
      if (char !== "\\") {
        result += char;
        continue;
      }

      const escaped = this.text[this.position];
      this.position += 1;
      switch (escaped) {
        case '"':
        case "'":
        case "\\":
        case "/":
          result += escaped;
          break;
        case "b":
          result += "\b";
          break;
        case "f":
          result += "\f";
          break;
        case "n":
          result += "\n";
          break;
        case "r":
          result += "\r";
          break;
        case "t":
          result += "\t";
          break;
        case "u": {
          const hex = this.text.slice(this.position, this.position + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.error(`invalid \\u escape "\\u${hex}"`);
          // Surrogate pairs written as two escapes join into one character on concatenation.
          result += String.fromCharCode(Number.parseInt(hex, 16));
          this.position += 4;
          break;
        }
        case undefined:
          throw this.error("a string is not terminated (the text ended after a backslash)");
        default:
          // An unknown escape such as "\d" keeps the character, as lenient readers do.
          result += escaped;
      }
    }
  }

  private readNumber(): number {
    const match = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(this.text.slice(this.position, this.position + 400));
    if (!match) throw this.error("invalid number");
    const value = Number(match[0]);
    if (!Number.isFinite(value)) throw this.error(`invalid number ${match[0]}`);
    this.position += match[0].length;
    return value;
  }

  private readLiteral(): unknown {
    const start = this.position;
    while (this.position < this.text.length && identifierPart.test(this.text[this.position])) this.position += 1;
    const word = this.text.slice(start, this.position);
    switch (word) {
      case "true":
      case "True":
        return true;
      case "false":
      case "False":
        return false;
      case "null":
      case "None":
        return null;
      default:
        this.position = start;
        throw this.error(`unexpected word ${JSON.stringify(word)} (strings need quotes)`);
    }
  }

  private skipWhitespace(): void {
    while (this.position < this.text.length && /\s/.test(this.text[this.position])) this.position += 1;
  }

  private error(rule: string): JsonSyntaxError {
    const before = this.text.slice(0, this.position);
    const line = before.split("\n").length;
    const column = this.position - before.lastIndexOf("\n");
    return new JsonSyntaxError(`${rule} at line ${line}, column ${column}`);
  }
}

/**
 * Parses `text` as one or more JSON values with the tolerances listed at the top of this file.
 * It never throws; a syntax error comes back as `{ ok: false, message }`.
 */
export function parseLenientJson(text: string, options: LenientJsonOptions = {}): LenientJsonResult {
  try {
    return { ok: true, values: [JSON.parse(text)] };
  } catch {
    // Fall through to the lenient reader, which also produces the better error message.
  }
  try {
    const reader = new LenientJsonReader(text, options.closeUnterminated ?? false);
    return { ok: true, values: reader.readValues() };
  } catch (error) {
    if (error instanceof JsonSyntaxError) return { ok: false, message: error.message };
    // A RangeError from very deep nesting is the only other failure the reader can raise.
    return { ok: false, message: `the JSON could not be read (${(error as Error).message})` };
  }
}
