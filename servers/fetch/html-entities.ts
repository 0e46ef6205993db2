// Decoding of HTML character references: numeric ones (&#232; &#x1F600;) and the named ones that
// real pages use (all of Latin-1, typographic punctuation, arrows and a few symbols).

// Names of U+00A0..U+00FF in code point order, as HTML defines them.
const latin1Names =
  "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para " +
  "middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute " +
  "Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml " +
  "Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml " +
  "eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml";

const otherEntities: Record<string, number> = {
  quot: 0x22, amp: 0x26, apos: 0x27, lt: 0x3c, gt: 0x3e,
  OElig: 0x152, oelig: 0x153, Scaron: 0x160, scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6, tilde: 0x2dc,
  Alpha: 0x391, Beta: 0x392, Gamma: 0x393, Delta: 0x394, Omega: 0x3a9, alpha: 0x3b1, beta: 0x3b2, gamma: 0x3b3,
  delta: 0x3b4, epsilon: 0x3b5, lambda: 0x3bb, mu: 0x3bc, pi: 0x3c0, sigma: 0x3c3, omega: 0x3c9,
  ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
  ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d,
  bdquo: 0x201e, dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030, prime: 0x2032,
  Prime: 0x2033, lsaquo: 0x2039, rsaquo: 0x203a, euro: 0x20ac, trade: 0x2122, larr: 0x2190, uarr: 0x2191,
  rarr: 0x2192, darr: 0x2193, harr: 0x2194, rArr: 0x21d2, hArr: 0x21d4, minus: 0x2212, infin: 0x221e,
  ne: 0x2260, le: 0x2264, ge: 0x2265, asymp: 0x2248, sum: 0x2211, radic: 0x221a, hearts: 0x2665, check: 0x2713,
};

const namedEntities: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  latin1Names.split(" ").forEach((name, index) => map.set(name, String.fromCodePoint(0xa0 + index)));
  for (const [name, codePoint] of Object.entries(otherEntities)) map.set(name, String.fromCodePoint(codePoint));
  return map;
})();

// Legacy names that browsers also accept without the closing semicolon.
const legacyWithoutSemicolon = new Set(["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"]);

const referencePattern = /&(?:#(\d{1,8})|#[xX]([0-9A-Fa-f]{1,7})|([A-Za-z][A-Za-z0-9]{1,31}));?/g;

/** Replaces character references with the characters; unknown names stay as written. */
export function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(referencePattern, (match: string, decimal?: string, hex?: string, name?: string) => {
    if (decimal !== undefined || hex !== undefined) {
      const codePoint = decimal !== undefined ? Number.parseInt(decimal, 10) : Number.parseInt(hex!, 16);
      return isValidCodePoint(codePoint) ? String.fromCodePoint(codePoint) : "\uFFFD";
    }
    const hasSemicolon = match.endsWith(";");
    const value = namedEntities.get(name!);
    if (value === undefined) return match;
    if (!hasSemicolon && !legacyWithoutSemicolon.has(name!)) return match;
    return value;
  });
}

function isValidCodePoint(codePoint: number): boolean {
  if (codePoint === 0 || codePoint > 0x10ffff) return false;
  return codePoint < 0xd800 || codePoint > 0xdfff;
}
