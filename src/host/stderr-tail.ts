// The last lines a subprocess wrote to stderr, kept so that errors can show why a server failed.

import { StringDecoder } from "node:string_decoder";

/** Maximum characters kept of one stderr line. */
const maxLineLength = 500;

export class StderrTail {
  readonly #maxLines: number;
  readonly #decoder = new StringDecoder("utf8");
  readonly #lines: string[] = [];
  #partial = "";

  /** @param maxLines lines kept (default 40). */
  constructor(maxLines = 40) {
    this.#maxLines = maxLines;
  }

  /** Adds a chunk of raw stderr; a UTF-8 character split across chunks is decoded once whole. */
  push(chunk: Buffer): void {
    const text = this.#partial + this.#decoder.write(chunk);
    const pieces = text.split(/\r?\n/);
    this.#partial = pieces.pop() ?? "";
    if (this.#partial.length > maxLineLength * 4) this.#partial = this.#partial.slice(-maxLineLength * 4);
    for (const piece of pieces) this.#add(piece);
  }

  /** Returns the last lines, including an unterminated last line. */
  lines(): string[] {
    const lines = this.#partial === "" ? [...this.#lines] : [...this.#lines, clip(this.#partial)];
    return lines.slice(-this.#maxLines);
  }

  /** Formats the last `count` lines for an error message, or "" when stderr was empty. */
  format(count = 10): string {
    const lines = this.lines().filter((line) => line.trim() !== "").slice(-count);
    if (lines.length === 0) return "";
    return `; last stderr lines:\n${lines.map((line) => `    ${line}`).join("\n")}`;
  }

  #add(line: string): void {
    this.#lines.push(clip(line));
    if (this.#lines.length > this.#maxLines) this.#lines.shift();
  }
}

function clip(line: string): string {
  return line.length <= maxLineLength ? line : `${line.slice(0, maxLineLength)}…`;
}
