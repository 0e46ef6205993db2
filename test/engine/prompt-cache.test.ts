// The persistent prompt cache in one process: the file format and its checks, LRU eviction, and
// sessions on the tiny random checkpoint that restore the system turn from disk.

import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EngineChatModel } from "../../src/engine/chat-model.js";
import { Model } from "../../src/engine/model.js";
import { PromptCache, resolvePromptCacheDir, systemTurnLength, type PromptCacheStats } from "../../src/engine/prompt-cache.js";
import type { ChatMessage, FinishRecord, GenerationRecord, TokenConstraint, TokenRecord } from "../../src/engine/types.js";
import { LogLevel, getLogLevel, setLogLevel, setLogSink } from "../../src/logger.js";
import { cachedCheckpoint, tinyCheckpoint, tinyShape } from "../fixtures/checkpoint.js";
import { collect, makeTempDir } from "./helpers.js";
import { chatMessages, chatTools, syntheticEntry } from "./prompt-cache-fixtures.js";

let logLines: string[] = [];
let restoreSink: ((line: string) => void) | undefined;
let previousLevel: LogLevel;
let temp: { dir: string; remove: () => void };
/** The tiny model without a prompt cache: the reference for cold runs. */
let cold: Model;

beforeAll(async () => {
  cold = await Model.load(tinyCheckpoint("F32"), { threads: 1 });
});
afterAll(() => cold?.dispose());

beforeEach(() => {
  temp = makeTempDir("nesso-prompt-cache-");
  logLines = [];
  previousLevel = getLogLevel();
  restoreSink = setLogSink((line) => logLines.push(line));
  setLogLevel(LogLevel.Debug);
});

afterEach(() => {
  if (restoreSink) setLogSink(restoreSink);
  setLogLevel(previousLevel);
  temp.remove();
});

function entryFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".nkv")) : [];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("prompt cache files", () => {
  const modelIdentity = "ab".repeat(32);
  const state = (seed: number, bytes = 1000) => Uint8Array.from({ length: bytes }, (_, i) => (i * 31 + seed) & 255);
  const prefix = (seed: number) => Array.from({ length: 10 }, (_, i) => 500 + seed * 100 + i);

  it("stores and reads back a state", async () => {
    const cache = new PromptCache({ dir: join(temp.dir, "città ✨"), modelIdentity });
    expect(await cache.lookup(prefix(1))).toBeNull();
    cache.store(prefix(1), state(1));
    await cache.flush();

    expect(await cache.lookup(prefix(1))).toEqual(state(1));
    expect(await cache.lookup(prefix(2))).toBeNull();
    expect(cache.stats).toMatchObject({ hits: 1, misses: 2, writes: 1, rejected: 0 });
    // The states come from prompts, so only the owner may read them.
    expect(statSync(cache.pathOf(prefix(1))).mode & 0o777).toBe(0o600);
    expect(statSync(cache.dir).mode & 0o777).toBe(0o700);
  });

  it("evicts the least recently used entries", async () => {
    const entryBytes = 88 + 4 * 10 + 1000;
    const cache = new PromptCache({ dir: temp.dir, modelIdentity, maxBytes: 2 * entryBytes + 100 });
    for (const seed of [1, 2]) {
      cache.store(prefix(seed), state(seed));
      await cache.flush();
      await sleep(20);
    }
    // A hit makes entry 1 the most recently used, so entry 2 goes first.
    expect(await cache.lookup(prefix(1))).not.toBeNull();
    await sleep(20);
    cache.store(prefix(3), state(3));
    await cache.flush();

    expect(existsSync(cache.pathOf(prefix(1)))).toBe(true);
    expect(existsSync(cache.pathOf(prefix(2)))).toBe(false);
    expect(existsSync(cache.pathOf(prefix(3)))).toBe(true);
    expect(entryFiles(temp.dir)).toHaveLength(2);
    expect(cache.stats.evictions).toBe(1);
    const total = entryFiles(temp.dir).reduce((sum, name) => sum + statSync(join(temp.dir, name)).size, 0);
    expect(total).toBeLessThanOrEqual(cache.maxBytes);
  });

  it("skips a state larger than maxBytes", async () => {
    const cache = new PromptCache({ dir: temp.dir, modelIdentity, maxBytes: 500 });
    cache.store(prefix(1), state(1));
    await cache.flush();
    expect(entryFiles(temp.dir)).toEqual([]);
    expect(logLines.some((line) => line.includes("more than maxBytes 500"))).toBe(true);
  });

  it("rejects a truncated file", async () => {
    const cache = new PromptCache({ dir: temp.dir, modelIdentity });
    cache.store(prefix(1), state(1));
    await cache.flush();
    const path = cache.pathOf(prefix(1));
    truncateSync(path, statSync(path).size - 1);

    expect(await cache.lookup(prefix(1))).toBeNull();
    expect(existsSync(path)).toBe(false);
    expect(cache.stats.rejected).toBe(1);
    expect(logLines.some((line) => line.includes("debug: ignoring prompt cache file") && line.includes("truncated"))).toBe(true);
  });

  it("rejects a corrupted payload", async () => {
    const cache = new PromptCache({ dir: temp.dir, modelIdentity });
    cache.store(prefix(1), state(1));
    await cache.flush();
    const path = cache.pathOf(prefix(1));
    const bytes = readFileSync(path);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(path, bytes);

    expect(await cache.lookup(prefix(1))).toBeNull();
    expect(existsSync(path)).toBe(false);
    expect(logLines.some((line) => line.includes("checksum does not match"))).toBe(true);
  });

  it("rejects a file of another model", async () => {
    const other = new PromptCache({ dir: temp.dir, modelIdentity: "cd".repeat(32) });
    other.store(prefix(1), state(1));
    await other.flush();
    const cache = new PromptCache({ dir: temp.dir, modelIdentity });
    expect(cache.pathOf(prefix(1))).not.toBe(other.pathOf(prefix(1)));
    expect(await cache.lookup(prefix(1))).toBeNull();
    expect(cache.stats.rejected).toBe(0);

    // Under this model's name (a copied or renamed file) the header check catches it.
    copyFileSync(other.pathOf(prefix(1)), cache.pathOf(prefix(1)));
    expect(await cache.lookup(prefix(1))).toBeNull();
    expect(cache.stats.rejected).toBe(1);
    expect(logLines.some((line) => line.includes("written for model cdcdcdcd"))).toBe(true);
  });

  it("rejects a file whose prefix tokens differ", async () => {
    const cache = new PromptCache({ dir: temp.dir, modelIdentity });
    cache.store(prefix(1), state(1));
    await cache.flush();
    copyFileSync(cache.pathOf(prefix(1)), cache.pathOf(prefix(2)));
    expect(await cache.lookup(prefix(2))).toBeNull();
    expect(logLines.some((line) => line.includes("prefix token ids differ"))).toBe(true);
    expect(await cache.lookup(prefix(1))).toEqual(state(1));
  });

  it("removes stale temporary files", async () => {
    const cache = new PromptCache({ dir: temp.dir, modelIdentity, maxBytes: 10_000 });
    cache.store(prefix(1), state(1));
    await cache.flush();
    const stale = join(temp.dir, `.${"0".repeat(64)}.4242.deadbeef.tmp`);
    const fresh = join(temp.dir, `.${"1".repeat(64)}.4243.deadbeef.tmp`);
    writeFileSync(stale, "partial");
    writeFileSync(fresh, "partial");
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    const unrelated = join(temp.dir, "notes.txt");
    writeFileSync(unrelated, "x".repeat(20_000));

    cache.store(prefix(2), state(2));
    await cache.flush();
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    // Files that are not cache entries are never counted or deleted.
    expect(existsSync(unrelated)).toBe(true);
    expect(entryFiles(temp.dir)).toHaveLength(2);
  });

  it("validates its options", () => {
    expect(() => new PromptCache({ dir: temp.dir, modelIdentity, maxBytes: 0 })).toThrow(/maxBytes must be an integer >= 1/);
    expect(() => new PromptCache({ dir: temp.dir, modelIdentity: "xyz" })).toThrow(/modelIdentity must be a sha256/);
    expect(() => new PromptCache({ dir: "", modelIdentity })).toThrow(/dir must be a non-empty path/);
  });

  it("resolves the default directory", () => {
    expect(resolvePromptCacheDir({ NESSO_MCP_CACHE_DIR: "/tmp/nesso-è" }, "linux")).toBe("/tmp/nesso-è");
    expect(resolvePromptCacheDir({ XDG_CACHE_HOME: "/xdg" }, "linux")).toBe("/xdg/nesso-mcp/prompt-cache");
    expect(resolvePromptCacheDir({}, "linux")).toMatch(/\/\.cache\/nesso-mcp\/prompt-cache$/);
    expect(resolvePromptCacheDir({}, "darwin")).toMatch(/\/Library\/Caches\/nesso-mcp\/prompt-cache$/);
  });

  it("hides files from readers until complete", async () => {
    // Readers poll while a large entry is written; they see no file or the whole one.
    const entry = syntheticEntry(32 * 1024 * 1024);
    const writer = new PromptCache({ dir: temp.dir, modelIdentity: entry.modelIdentity });
    const reader = new PromptCache({ dir: temp.dir, modelIdentity: entry.modelIdentity });
    writer.store(entry.prefix, entry.state);
    let done = false;
    void writer.flush().then(() => (done = true));
    let polls = 0;
    while (!done) {
      for (const name of entryFiles(temp.dir)) expect(statSync(join(temp.dir, name)).size).toBe(88 + 4 * entry.prefix.length + entry.state.length);
      polls++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(polls).toBeGreaterThan(1);
    const read = await reader.lookup(entry.prefix);
    expect(read).not.toBeNull();
    // Buffer.equals, because toEqual walks 32 M elements one by one.
    expect(Buffer.from(read!).equals(entry.state)).toBe(true);
    expect(reader.stats.rejected).toBe(0);
  });
});

describe("prompt cache in sessions", () => {
  // The models are loaded once; every test starts from an empty cache directory.
  let cacheDir: { dir: string; remove: () => void };
  let model: Model;
  let otherSeed: Model;
  let otherShape: Model;
  beforeAll(async () => {
    cacheDir = makeTempDir("nesso-prompt-cache-sessions-");
    const promptCache = { dir: cacheDir.dir };
    model = await Model.load(tinyCheckpoint("F32"), { threads: 1, promptCache });
    otherSeed = await Model.load(tinyCheckpoint("F32", 2), { threads: 1, promptCache });
    const kv4 = cachedCheckpoint({ name: "tiny-f32-kv4-s1", shape: { ...tinyShape, nKvHeads: 4 }, dtype: "F32", seed: 1 });
    otherShape = await Model.load(kv4, { threads: 1, promptCache });
  });
  afterAll(() => {
    for (const loaded of [model, otherSeed, otherShape]) loaded?.dispose();
    cacheDir?.remove();
  });
  beforeEach(() => {
    for (const name of entryFiles(cacheDir.dir)) rmSync(join(cacheDir.dir, name));
  });

  /** Returns a constraint that masks the stop tokens out, so generation runs to maxTokens. */
  function noStop(target: Model): TokenConstraint {
    const mask = new Uint8Array(target.config.vocabSize).fill(1);
    for (const id of target.stopTokens) mask[id] = 0;
    return { mask: () => mask, accept: () => {}, isComplete: () => false };
  }

  const finishOf = (records: GenerationRecord[]) => records.at(-1) as FinishRecord;
  const tokensOf = (records: GenerationRecord[]) => records.filter((record): record is TokenRecord => record.kind === "token").map((record) => record.tokenId);

  function promptTokens(user = "Elenca i file nella cartella «città». 🇮🇹"): { tokens: number[]; prefix: number } {
    const tokens = model.encode(model.applyChatTemplate(chatMessages(user), { tools: chatTools }));
    return { tokens, prefix: systemTurnLength(tokens, model.textTokenizer) };
  }

  /** Greedy tokens of a fresh session of `target`, without any prompt cache. */
  async function coldTokens(target: Model, tokens: number[]): Promise<number[]> {
    const session = target.createSession({ contextSize: 512 });
    const records = await collect(session.generate(tokens, { maxTokens: 12, constraint: noStop(target) }));
    session.dispose();
    return tokensOf(records);
  }

  async function generateCached(target: Model, tokens: number[], prefix: number): Promise<GenerationRecord[]> {
    const session = target.createSession({ contextSize: 512 });
    const records = await collect(session.generate(tokens, { maxTokens: 12, constraint: noStop(target), cachePrefixTokens: prefix }));
    session.dispose();
    await target.promptCache!.flush();
    return records;
  }

  /** Counters of `target`'s prompt cache since `before`. */
  function statsSince(target: Model, before: PromptCacheStats): PromptCacheStats {
    const now = target.promptCache!.stats;
    return { hits: now.hits - before.hits, misses: now.misses - before.misses, rejected: now.rejected - before.rejected, writes: now.writes - before.writes, evictions: now.evictions - before.evictions };
  }

  it("is off unless requested", () => {
    expect(cold.promptCache).toBeNull();
  });

  it("restores the system turn in a new session", async () => {
    const before = model.promptCache!.stats;
    const { tokens, prefix } = promptTokens();
    expect(prefix).toBeGreaterThan(50);
    expect(model.decode(tokens.slice(0, prefix))).toMatch(/<\|im_start\|>system\n[\s\S]*<\|im_end\|>$/);
    const expected = await coldTokens(cold, tokens);

    const first = await generateCached(model, tokens, prefix);
    expect(finishOf(first).promptCacheTokens).toBe(0);
    expect(tokensOf(first)).toEqual(expected);
    expect(existsSync(model.promptCache!.pathOf(tokens.slice(0, prefix)))).toBe(true);

    const second = await generateCached(model, tokens, prefix);
    expect(finishOf(second).promptCacheTokens).toBe(prefix);
    expect(finishOf(second).reusedTokens).toBe(prefix);
    expect(tokensOf(second)).toEqual(expected);

    // Another user message after the same system turn hits the same file.
    const other = promptTokens("What is in README.md?");
    const third = await generateCached(model, other.tokens, other.prefix);
    expect(finishOf(third).promptCacheTokens).toBe(prefix);
    expect(tokensOf(third)).toEqual(await coldTokens(cold, other.tokens));
    expect(statsSince(model, before)).toMatchObject({ hits: 2, writes: 1, rejected: 0 });
    expect(entryFiles(cacheDir.dir)).toHaveLength(1);
  });

  it("prefers a longer in-memory prefix", async () => {
    const before = model.promptCache!.stats;
    const { tokens, prefix } = promptTokens();
    const session = model.createSession({ contextSize: 512 });
    await collect(session.generate(tokens, { maxTokens: 0, cachePrefixTokens: prefix }));
    await model.promptCache!.flush();
    const finish = finishOf(await collect(session.generate(tokens, { maxTokens: 0, cachePrefixTokens: prefix })));
    expect(finish.reusedTokens).toBe(tokens.length - 1);
    expect(finish.promptCacheTokens).toBe(0);
    expect(statsSince(model, before)).toMatchObject({ hits: 0, writes: 1 });
    session.dispose();
  });

  it("ignores a truncated file", async () => {
    const { tokens, prefix } = promptTokens();
    await generateCached(model, tokens, prefix);
    const path = model.promptCache!.pathOf(tokens.slice(0, prefix));
    const fullSize = statSync(path).size;
    truncateSync(path, Math.floor(fullSize / 2));

    const records = await generateCached(model, tokens, prefix);
    expect(finishOf(records).promptCacheTokens).toBe(0);
    expect(tokensOf(records)).toEqual(await coldTokens(cold, tokens));
    expect(logLines.some((line) => line.includes("debug: ignoring prompt cache file") && line.includes("truncated"))).toBe(true);
    // The bad file was deleted and the evaluated prefix saved again in full.
    expect(statSync(path).size).toBe(fullSize);
  });

  it("ignores a file of another model", async () => {
    const { tokens, prefix } = promptTokens();
    const key = tokens.slice(0, prefix);
    expect(otherSeed.promptCache!.modelIdentity).not.toBe(model.promptCache!.modelIdentity);
    expect(otherShape.promptCache!.modelIdentity).not.toBe(model.promptCache!.modelIdentity);

    for (const other of [otherSeed, otherShape]) {
      // Another model's state lives under another name, so it is never found by this model.
      rmSync(model.promptCache!.pathOf(key), { force: true });
      const before = model.promptCache!.stats;
      await generateCached(other, tokens, prefix);
      expect(await model.promptCache!.lookup(key)).toBeNull();

      // A file copied under this model's name is caught by its header and never loaded.
      copyFileSync(other.promptCache!.pathOf(key), model.promptCache!.pathOf(key));
      logLines = [];
      const records = await generateCached(model, tokens, prefix);
      expect(finishOf(records).promptCacheTokens).toBe(0);
      expect(tokensOf(records)).toEqual(await coldTokens(cold, tokens));
      expect(logLines.some((line) => line.includes("debug: ignoring prompt cache file") && line.includes("written for model"))).toBe(true);
      expect(statsSince(model, before)).toMatchObject({ hits: 0, rejected: 1 });
      // This model's own state replaced the foreign file.
      expect(finishOf(await generateCached(model, tokens, prefix)).promptCacheTokens).toBe(prefix);
    }
  });

  it("survives a state the engine rejects", async () => {
    // A file that claims this model's identity but carries another model's state passes the file
    // checks. The native weights fingerprint rejects it, and the context is left as it was.
    const before = model.promptCache!.stats;
    const { tokens, prefix } = promptTokens();
    const key = tokens.slice(0, prefix);
    await generateCached(otherSeed, tokens, prefix);
    const bytes = readFileSync(otherSeed.promptCache!.pathOf(key));
    Buffer.from(model.promptCache!.modelIdentity, "hex").copy(bytes, 16);
    writeFileSync(model.promptCache!.pathOf(key), bytes);

    const records = await generateCached(model, tokens, prefix);
    expect(finishOf(records).promptCacheTokens).toBe(0);
    expect(tokensOf(records)).toEqual(await coldTokens(cold, tokens));
    expect(logLines.some((line) => line.includes("the engine rejected the state"))).toBe(true);
    expect(statsSince(model, before)).toMatchObject({ hits: 0, rejected: 1 });
  });

  it("caches the system turn through EngineChatModel", async () => {
    const run = async (messages: ChatMessage[]) => {
      const chat = new EngineChatModel(model, { contextSize: 512 });
      const records = await collect(chat.generate(chat.renderChat(messages, { tools: chatTools }), { maxTokens: 4 }));
      chat.dispose();
      await model.promptCache!.flush();
      return finishOf(records);
    };
    expect((await run(chatMessages("Ciao!"))).promptCacheTokens).toBe(0);
    expect((await run(chatMessages("Come stai? 😊"))).promptCacheTokens).toBe(promptTokens().prefix);
    expect(entryFiles(cacheDir.dir)).toHaveLength(1);

    // A prompt without a system turn has no prefix to save.
    const chat = new EngineChatModel(model, { contextSize: 512 });
    await collect(chat.generate(chat.renderChat([{ role: "user", content: "Ciao" }]), { maxTokens: 2 }));
    chat.dispose();
    await model.promptCache!.flush();
    expect(entryFiles(cacheDir.dir)).toHaveLength(1);
  });

  it("rejects invalid cache options", async () => {
    await expect(Model.load(tinyCheckpoint("F32"), { promptCache: { dir: temp.dir, maxBytes: -1 } })).rejects.toThrow(/maxBytes must be an integer >= 1/);
    await expect(Model.load(tinyCheckpoint("F32"), { promptCache: "yes" as unknown as boolean })).rejects.toThrow(/promptCache must be true, false or an options object/);
    const session = cold.createSession({ contextSize: 64 });
    await expect(collect(session.generate([1, 2, 3], { cachePrefixTokens: 1.5 }))).rejects.toThrow(/cachePrefixTokens must be an integer >= 0/);
    session.dispose();
  });
});

describe("systemTurnLength", () => {
  it("finds the end of the first system turn", () => {
    const tokenizer = cold.textTokenizer;
    const withTools = cold.encode(cold.applyChatTemplate(chatMessages("Ciao"), { tools: chatTools }));
    const end = systemTurnLength(withTools, tokenizer);
    expect(withTools[end - 1]).toBe(tokenizer.tokenId("<|im_end|>"));
    expect(cold.decode(withTools.slice(end))).toBe("\n<|im_start|>user\nCiao<|im_end|>\n<|im_start|>assistant\n");

    const withoutTools = cold.encode(cold.applyChatTemplate(chatMessages("Ciao", "Solo testo.")));
    expect(cold.decode(withoutTools.slice(0, systemTurnLength(withoutTools, tokenizer)))).toBe("<|begin_of_text|>\n<|im_start|>system\nSolo testo.<|im_end|>");
  });

  it("returns 0 without a leading system turn", () => {
    const tokenizer = cold.textTokenizer;
    const userFirst = cold.encode(cold.applyChatTemplate([{ role: "user", content: "Ciao" }]));
    expect(systemTurnLength(userFirst, tokenizer)).toBe(0);
    expect(systemTurnLength(cold.encode("<|im_start|>system\nnever closed"), tokenizer)).toBe(0);
    expect(systemTurnLength(cold.encode("testo <|im_start|>system\nx<|im_end|>"), tokenizer)).toBe(0);
    expect(systemTurnLength(cold.encode("<|im_start|>user\nx<|im_end|>"), tokenizer)).toBe(0);
  });
});
