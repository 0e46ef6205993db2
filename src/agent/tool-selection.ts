// Ranks tools by relevance to a request, for when not all of them fit in the context window.
//
// The ranking is lexical: a BM25-style weight (rarer words count more) of the request's words
// found in each tool's name, title, parameter names and description. Italian requests meet English
// descriptions through the synonym list in lexicon.ts, and both sides are stemmed so "files" meets
// "file" and "cartelle" meets "cartella".

import type { RegisteredTool } from "../host/types.js";
import { searchSynonyms, stopWords } from "./lexicon.js";

export interface RankedTool {
  tool: RegisteredTool;
  /** Relevance; 0 when no word of the request occurs in the tool's text. */
  score: number;
}

export interface RankToolsOptions {
  /** Tools the conversation already called; they rank higher because follow-up steps reuse them. */
  usedToolNames?: ReadonlySet<string>;
}

// How much a word counts by where it occurs in the tool: a word in the name says most about it.
const fieldWeights = { name: 3, title: 2, parameter: 1.5, description: 1 } as const;
type Field = keyof typeof fieldWeights;

// A deprecated tool keeps half its score, so its replacement (read_text_file over read_file) wins.
const deprecatedFactor = 0.5;
const usedToolBonus = 2;

/** Splits text into lowercase words without accents; snake_case, kebab-case and camelCase split too. */
export function splitWords(text: string): string[] {
  return text
    .replace(/([\p{Ll}\d])(\p{Lu})/gu, "$1 $2")
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word !== "");
}

/** Strips common English inflections: "files" → "file", "directories" → "directory". */
export function stemEnglish(word: string): string {
  if (word.length <= 3) return word;
  if (word.endsWith("ies") && word.length > 4) return `${word.slice(0, -3)}y`;
  if (word.endsWith("sses")) return word.slice(0, -2);
  if (word.endsWith("ing") && word.length > 5) return word.slice(0, -3);
  if (word.endsWith("ed") && word.length > 4) return word.slice(0, -2);
  if (/(ch|sh|x|z)es$/.test(word)) return word.slice(0, -2);
  if (word.endsWith("s") && !word.endsWith("ss")) return word.slice(0, -1);
  return word;
}

/** Strips Italian clitics, infinitive endings and final vowels: "leggimi", "leggere", "leggi" → "legg". */
export function stemItalian(word: string): string {
  let stem = word;
  const clitic = /(mi|ti|ci|lo|la|li|le|ne|gli)$/.exec(stem);
  if (clitic && stem.length - clitic[0].length >= 4) stem = stem.slice(0, -clitic[0].length);
  const infinitive = /(are|ere|ire)$/.exec(stem);
  if (infinitive && stem.length - 3 >= 3) stem = stem.slice(0, -3);
  const vowels = /[aeiou]+$/.exec(stem);
  if (vowels && stem.length - vowels[0].length >= 3) stem = stem.slice(0, -vowels[0].length);
  return stem;
}

/** Index of the synonym list under both stems of each entry, built once. */
const synonymIndex: ReadonlyMap<string, readonly string[]> = (() => {
  const index = new Map<string, string[]>();
  for (const [word, synonyms] of Object.entries(searchSynonyms)) {
    for (const key of new Set([stemEnglish(word), stemItalian(word)])) {
      const entry = index.get(key) ?? [];
      entry.push(...synonyms.map(stemEnglish));
      index.set(key, entry);
    }
  }
  return index;
})();

/** Returns the stemmed search terms of a request, synonyms included. */
export function requestTerms(request: string): Set<string> {
  const terms = new Set<string>();
  for (const word of splitWords(request)) {
    if (stopWords.has(word)) continue;
    const english = stemEnglish(word);
    terms.add(english);
    for (const key of [english, stemItalian(word)]) {
      for (const synonym of synonymIndex.get(key) ?? []) terms.add(synonym);
    }
  }
  return terms;
}

/** Maps each stemmed word of a tool to the highest-weighted field it occurs in. */
function toolTerms(tool: RegisteredTool): Map<string, Field> {
  const terms = new Map<string, Field>();
  const add = (text: string | undefined, field: Field) => {
    if (text === undefined) return;
    for (const word of splitWords(text)) {
      const term = stemEnglish(word);
      const previous = terms.get(term);
      if (previous === undefined || fieldWeights[previous] < fieldWeights[field]) terms.set(term, field);
    }
  };

  add(tool.originalName, "name");
  add(tool.name, "name");
  add(tool.title ?? tool.annotations?.title, "title");
  const properties = tool.inputSchema.properties;
  if (typeof properties === "object" && properties !== null) add(Object.keys(properties).join(" "), "parameter");
  add(tool.description, "description");
  return terms;
}

function isDeprecated(tool: RegisteredTool): boolean {
  return /\bdeprecated\b/i.test(`${tool.title ?? ""} ${tool.description ?? ""}`);
}

/**
 * Orders tools from most to least relevant to the request. Ties, including all tools scoring 0,
 * keep the host's order.
 */
export function rankTools(tools: readonly RegisteredTool[], request: string, options: RankToolsOptions = {}): RankedTool[] {
  const query = requestTerms(request);
  const documents = tools.map(toolTerms);

  // Inverse document frequency over this tool list: a word every tool has ("file") carries little weight.
  const documentFrequency = new Map<string, number>();
  for (const terms of documents) {
    for (const term of terms.keys()) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
  }
  const idf = (term: string) => {
    const frequency = documentFrequency.get(term) ?? 0;
    return Math.log(1 + (tools.length - frequency + 0.5) / (frequency + 0.5));
  };

  const ranked = tools.map((tool, index) => {
    let score = 0;
    for (const term of query) {
      const field = documents[index].get(term);
      if (field !== undefined) score += idf(term) * fieldWeights[field];
    }
    if (isDeprecated(tool)) score *= deprecatedFactor;
    if (options.usedToolNames?.has(tool.name)) score += usedToolBonus;
    return { tool, score, index };
  });

  ranked.sort((a, b) => b.score - a.score || a.index - b.index);
  return ranked.map(({ tool, score }) => ({ tool, score }));
}
