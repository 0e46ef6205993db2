// Chunking of fetched text by Unicode code points, so that `start_index` and `max_length` never
// split an emoji or another character outside the Basic Multilingual Plane.

export interface TextChunk {
  text: string;
  /** Code point index of the first character of the chunk. */
  start: number;
  /** Code point index just past the chunk. */
  end: number;
  /** Code points in the whole text. */
  total: number;
}

/** Returns up to `maxLength` code points of `text` starting at code point `start`. */
export function sliceCodePoints(text: string, start: number, maxLength: number): TextChunk {
  let startUnit = text.length;
  let endUnit = text.length;
  let count = 0;
  let unit = 0;
  while (unit < text.length) {
    if (count === start) startUnit = unit;
    if (count === start + maxLength) endUnit = unit;
    const codePoint = text.codePointAt(unit)!;
    unit += codePoint > 0xffff ? 2 : 1;
    count++;
  }
  const chunkStart = Math.min(start, count);
  const chunkEnd = Math.min(start + maxLength, count);
  return { text: text.slice(startUnit, endUnit), start: chunkStart, end: chunkEnd, total: count };
}
