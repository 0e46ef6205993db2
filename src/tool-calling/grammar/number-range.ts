// Grammar alternatives for JSON numbers inside numeric bounds, built digit by digit the way
// regular-expression range generators do (e.g. [17, 342] becomes 1[7-9] | [2-9][0-9] | [1-2][0-9][0-9] | 3[0-3][0-9] | 34[0-2]).

import { bytes, literal, type Element } from "./ir.js";

const DIGIT: Element = bytes([[0x30, 0x39]]);

function digitRange(low: string, high: string): Element {
  return bytes([[low.charCodeAt(0), high.charCodeAt(0)]]);
}

function anyDigits(count: number): Element[] {
  return Array.from({ length: count }, () => DIGIT);
}

/** Alternatives for the digit strings of length n between `low` and `high` (both of length n). */
function sameLengthRange(low: string, high: string): Element[][] {
  const n = low.length;
  if (n === 0) return [[]];
  if (low === high) return [literal(low)];
  const lowRest = low.slice(1);
  const highRest = high.slice(1);
  if (low[0] === high[0]) {
    return sameLengthRange(lowRest, highRest).map((alternative) => [...literal(low[0]), ...alternative]);
  }

  const lowIsFloor = /^0*$/.test(lowRest);
  const highIsCeiling = /^9*$/.test(highRest);
  const alternatives: Element[][] = [];
  let middleLow = low.charCodeAt(0) + 1;
  let middleHigh = high.charCodeAt(0) - 1;
  if (lowIsFloor) middleLow--;
  else {
    for (const tail of sameLengthRange(lowRest, "9".repeat(n - 1))) alternatives.push([...literal(low[0]), ...tail]);
  }
  if (highIsCeiling) middleHigh++;
  if (middleLow <= middleHigh) {
    alternatives.push([digitRange(String.fromCharCode(middleLow), String.fromCharCode(middleHigh)), ...anyDigits(n - 1)]);
  }
  if (!highIsCeiling) {
    for (const tail of sameLengthRange("0".repeat(n - 1), highRest)) alternatives.push([...literal(high[0]), ...tail]);
  }
  return alternatives;
}

/**
 * Alternatives for the decimal integers in [low, high] without sign or leading zeros. `high` of
 * null means no upper bound, in which case numbers get at most `maxDigits` digits (or as many as
 * `low` has, if that is more).
 */
export function nonNegativeIntegerRange(low: bigint, high: bigint | null, maxDigits: number): Element[][] {
  const lowText = low.toString();
  const highText = high === null ? "9".repeat(Math.max(maxDigits, lowText.length)) : high.toString();
  if (high !== null && high < low) return [];
  const alternatives: Element[][] = [];
  for (let length = lowText.length; length <= highText.length; length++) {
    const from = length === lowText.length ? lowText : "1" + "0".repeat(length - 1);
    const to = length === highText.length ? highText : "9".repeat(length);
    alternatives.push(...sameLengthRange(from, to));
  }
  return alternatives;
}

/** Alternatives for JSON integers in [low, high]; null bounds are open. */
export function integerRange(low: bigint | null, high: bigint | null, maxDigits: number): Element[][] {
  const alternatives: Element[][] = [];
  if (low === null || low < 0n) {
    // Negative numbers are "-" followed by a magnitude in [max(1, -high), -low].
    const magnitudeLow = high === null || high >= 0n ? 1n : -high;
    const magnitudeHigh = low === null ? null : -low;
    for (const alternative of nonNegativeIntegerRange(magnitudeLow, magnitudeHigh, maxDigits)) {
      alternatives.push([...literal("-"), ...alternative]);
    }
  }
  if (high === null || high >= 0n) {
    const from = low === null || low < 0n ? 0n : low;
    alternatives.push(...nonNegativeIntegerRange(from, high, maxDigits));
  }
  return alternatives;
}

export interface DecimalBounds {
  minimum: number | null;
  exclusiveMinimum: boolean;
  maximum: number | null;
  exclusiveMaximum: boolean;
}

/**
 * Alternatives for JSON numbers (with optional fraction, no exponent) inside the bounds. The result
 * is a subset of the numbers in range, never a superset: where a bound falls between integers the
 * values between the bound and the next integer are left out (e.g. with maximum 2.5, "2.3" is not
 * generated but "2" is). `fraction` is the element sequence of an optional fraction part, and
 * `nonZeroFraction` that of a fraction part with a non-zero digit, which lets an exclusive integer
 * bound be followed by a fraction (with exclusiveMinimum 0 and exclusiveMaximum 1, "0.5").
 */
export function decimalRange(bounds: DecimalBounds, maxDigits: number, fraction: Element[], nonZeroFraction: Element[]): Element[][] {
  const alternatives: Element[][] = [];
  const { minimum, maximum } = bounds;

  // The non-negative side: x = I.F with I the integer part.
  if (maximum === null || maximum >= 0) {
    const low = minimum === null || minimum < 0 ? 0 : minimum;
    const lowExclusive = minimum !== null && minimum >= 0 && bounds.exclusiveMinimum;
    alternatives.push(...magnitudeRange(low, lowExclusive, maximum, bounds.exclusiveMaximum, maxDigits, fraction, nonZeroFraction, []));
  }

  // The negative side: x = -y with y in [max(-maximum, 0), -minimum].
  if (minimum === null || minimum < 0) {
    const low = maximum === null || maximum > 0 ? 0 : -maximum;
    const lowExclusive = maximum !== null && maximum <= 0 && bounds.exclusiveMaximum;
    const high = minimum === null ? null : -minimum;
    alternatives.push(...magnitudeRange(low, lowExclusive, high, bounds.exclusiveMinimum, maxDigits, fraction, nonZeroFraction, literal("-")));
  }
  return alternatives;
}

/** Numbers I or I.F with low (≤ or <) value (≤ or <) high, for 0 ≤ low. */
function magnitudeRange(
  low: number,
  lowExclusive: boolean,
  high: number | null,
  highExclusive: boolean,
  maxDigits: number,
  fraction: Element[],
  nonZeroFraction: Element[],
  prefix: Element[],
): Element[][] {
  // Integer parts that keep I.F above the lower bound for every fraction F ≥ 0.
  const integerLow = lowExclusive && Number.isInteger(low) ? low + 1 : Math.ceil(low);
  const alternatives: Element[][] = [];
  // An exclusive integer bound itself, with a non-zero fraction: low < low.F < low + 1 ≤ high.
  if (lowExclusive && Number.isInteger(low) && (high === null || low + 1 <= high)) {
    for (const alternative of nonNegativeIntegerRange(BigInt(low), BigInt(low), maxDigits)) {
      alternatives.push([...prefix, ...alternative, ...nonZeroFraction]);
    }
  }
  if (high === null) {
    for (const alternative of nonNegativeIntegerRange(BigInt(integerLow), null, maxDigits)) {
      alternatives.push([...prefix, ...alternative, ...fraction]);
    }
    return alternatives;
  }

  // With a fraction, I + 1 ≤ high keeps I.F below the upper bound.
  const withFractionHigh = Math.floor(high) - 1;
  if (withFractionHigh >= integerLow) {
    for (const alternative of nonNegativeIntegerRange(BigInt(integerLow), BigInt(withFractionHigh), maxDigits)) {
      alternatives.push([...prefix, ...alternative, ...fraction]);
    }
  }
  // Without a fraction, the integers up to the bound itself.
  const integerHigh = highExclusive && Number.isInteger(high) ? high - 1 : Math.floor(high);
  const plainLow = Math.max(integerLow, withFractionHigh + 1);
  if (integerHigh >= plainLow) {
    for (const alternative of nonNegativeIntegerRange(BigInt(plainLow), BigInt(integerHigh), maxDigits)) {
      alternatives.push([...prefix, ...alternative]);
    }
  }
  return alternatives;
}
