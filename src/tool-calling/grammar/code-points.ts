// Sets of Unicode code points and their UTF-8 encodings as byte-range sequences, so that character
// classes (JSON string characters, regular-expression classes) become byte-level grammar rules.

/** Sorted, disjoint, non-adjacent inclusive ranges of code points. */
export type CodePointSet = ReadonlyArray<readonly [number, number]>;

export const MAX_CODE_POINT = 0x10ffff;
const SURROGATES: CodePointSet = [[0xd800, 0xdfff]];

export function codePointSet(ranges: ReadonlyArray<readonly [number, number]>): CodePointSet {
  const sorted = ranges.filter(([low, high]) => low <= high).map(([low, high]) => [low, high] as [number, number]);
  sorted.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
    else merged.push(range);
  }
  return merged;
}

export function union(a: CodePointSet, b: CodePointSet): CodePointSet {
  return codePointSet([...a, ...b]);
}

export function complement(set: CodePointSet): CodePointSet {
  const result: Array<[number, number]> = [];
  let next = 0;
  for (const [low, high] of set) {
    if (low > next) result.push([next, low - 1]);
    next = high + 1;
  }
  if (next <= MAX_CODE_POINT) result.push([next, MAX_CODE_POINT]);
  return result;
}

export function subtract(a: CodePointSet, b: CodePointSet): CodePointSet {
  return intersect(a, complement(b));
}

export function intersect(a: CodePointSet, b: CodePointSet): CodePointSet {
  const result: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const low = Math.max(a[i][0], b[j][0]);
    const high = Math.min(a[i][1], b[j][1]);
    if (low <= high) result.push([low, high]);
    if (a[i][1] < b[j][1]) i++;
    else j++;
  }
  return result;
}

export function contains(set: CodePointSet, codePoint: number): boolean {
  return set.some(([low, high]) => codePoint >= low && codePoint <= high);
}

export function isEmpty(set: CodePointSet): boolean {
  return set.length === 0;
}

/** Every Unicode scalar value (all code points except the UTF-16 surrogates). */
export const ALL_SCALARS: CodePointSet = complement(SURROGATES);

/** Adds or removes the other letter case of every ASCII letter in the set. */
export function withAsciiCaseVariants(set: CodePointSet): CodePointSet {
  const extra: Array<[number, number]> = [];
  for (const [low, high] of intersect(set, [[0x41, 0x5a]])) extra.push([low + 0x20, high + 0x20]);
  for (const [low, high] of intersect(set, [[0x61, 0x7a]])) extra.push([low - 0x20, high - 0x20]);
  return union(set, extra);
}

/** One UTF-8 encoding shape: the allowed byte range at each position of the sequence. */
export type Utf8Sequence = Array<[number, number]>;

/**
 * Splits a set of scalar values into UTF-8 byte-range sequences. Every byte string matched by one
 * of the sequences is the encoding of exactly one member. Surrogates are removed first.
 */
export function utf8Sequences(set: CodePointSet): Utf8Sequence[] {
  const out: Utf8Sequence[] = [];
  for (const [low, high] of subtract(set, SURROGATES)) splitRange(low, high, out);
  return out;
}

function splitRange(low: number, high: number, out: Utf8Sequence[]): void {
  // Ranges that cross an encoding length boundary are cut there first.
  for (const boundary of [0x7f, 0x7ff, 0xffff]) {
    if (low <= boundary && high > boundary) {
      splitRange(low, boundary, out);
      splitRange(boundary + 1, high, out);
      return;
    }
  }
  if (high <= 0x7f) {
    out.push([[low, high]]);
    return;
  }
  // Then so that every continuation byte below the leading differing one spans its full range.
  for (let i = 1; i < 4; i++) {
    const mask = (1 << (6 * i)) - 1;
    if ((low & ~mask) !== (high & ~mask)) {
      if ((low & mask) !== 0) {
        splitRange(low, low | mask, out);
        splitRange((low | mask) + 1, high, out);
        return;
      }
      if ((high & mask) !== mask) {
        splitRange(low, (high & ~mask) - 1, out);
        splitRange(high & ~mask, high, out);
        return;
      }
    }
  }
  const first = encodeUtf8(low);
  const last = encodeUtf8(high);
  out.push(first.map((byte, i) => [byte, last[i]] as [number, number]));
}

export function encodeUtf8(codePoint: number): number[] {
  if (codePoint < 0x80) return [codePoint];
  if (codePoint < 0x800) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f)];
  if (codePoint < 0x10000) {
    return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
  }
  return [
    0xf0 | (codePoint >> 18),
    0x80 | ((codePoint >> 12) & 0x3f),
    0x80 | ((codePoint >> 6) & 0x3f),
    0x80 | (codePoint & 0x3f),
  ];
}
