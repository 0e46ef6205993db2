// Native context lifecycle: context limits, rewind, saved states, cancellation, concurrency,
// dispose, and the event loop during a long prefill.

import { createRequire } from "node:module";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DisposedError, NessoError } from "../../src/errors.js";
import type { NativeModel } from "../../src/engine/native-api.js";
import { addonPathVariable, loadNativeAddon } from "../../src/engine/native.js";
import { cachedCheckpoint, tinyCheckpoint, tinyShape } from "../fixtures/checkpoint.js";
import { maxAbs, maxAbsDifference, specFromDirectory } from "./native-helpers.js";

const addon = loadNativeAddon();

const tokens = (count: number, start = 1000) => Int32Array.from({ length: count }, (_, i) => start + ((i * 7919) % 120000));

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("native context", () => {
  let model: NativeModel;

  beforeAll(async () => {
    model = await addon.loadModel(specFromDirectory(tinyCheckpoint("F32")));
  });

  afterAll(() => {
    model.dispose();
  });

  it("rejects tokens beyond the context size", async () => {
    const context = model.createContext({ contextSize: 8 });
    await context.eval(tokens(5));

    const error = await rejection(context.eval(tokens(4)));

    expect(error).toBeInstanceOf(NessoError);
    expect((error as NessoError).code).toBe("CONTEXT_FULL");
    expect((error as NessoError).message).toContain("eval: 4 tokens at position 5 exceed contextSize 8");
    expect(context.length).toBe(5);
    context.dispose();
  });

  it("rejects token ids outside the vocabulary", async () => {
    const context = model.createContext({ contextSize: 8 });
    for (const id of [-1, tinyShape.vocabSize]) {
      const error = await rejection(context.eval(Int32Array.of(5, id)));
      expect(error).toBeInstanceOf(NessoError);
      expect((error as NessoError).code).toBe("INVALID_ARGUMENT");
      expect((error as NessoError).message).toContain(`tokens[1] is ${id} but token ids are in [0, ${tinyShape.vocabSize})`);
    }
    expect(context.length).toBe(0);
    context.dispose();
  });

  it("rejects invalid eval arguments", async () => {
    const context = model.createContext({ contextSize: 8 });
    const cases: [unknown, unknown, RegExp][] = [
      [new Int32Array(0), undefined, /tokens is empty/],
      [[1, 2], undefined, /tokens must be a Int32Array but is Array\(2\)/],
      [Uint32Array.of(1), undefined, /tokens must be a Int32Array/],
      [Int32Array.of(1), { chunkSize: 0 }, /options.chunkSize is 0/],
      [Int32Array.of(1), { chunkSize: 1.5 }, /options.chunkSize is 1.5/],
    ];
    for (const [input, options, message] of cases) {
      const error = await rejection(context.eval(input as Int32Array, options as { chunkSize: number }));
      expect((error as NessoError).code).toBe("INVALID_ARGUMENT");
      expect((error as Error).message).toMatch(message);
    }
    context.dispose();
  });

  it("createContext enforces maxContextSize", () => {
    const error = thrown(() => model.createContext({ contextSize: 4097 }));
    expect((error as NessoError).code).toBe("INVALID_ARGUMENT");
    expect((error as Error).message).toContain("options.contextSize is 4097 but must be an integer in [1, 4096]");
  });

  it("getLogits and sample need evaluated tokens", async () => {
    const context = model.createContext({ contextSize: 8 });
    const greedy = { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, penaltyTokens: null, seed: 0 };
    expect((thrown(() => context.getLogits()) as Error).message).toMatch(/no logits/);
    expect((thrown(() => context.sample(greedy)) as Error).message).toMatch(/no logits/);

    await context.eval(tokens(3));
    expect(context.getLogits().length).toBe(tinyShape.vocabSize);
    context.rewind(2);
    expect((thrown(() => context.getLogits()) as NessoError).code).toBe("INVALID_ARGUMENT");
    context.dispose();
  });

  it("rewind then re-eval reproduces the logits", async () => {
    const context = model.createContext({ contextSize: 32 });
    const prompt = tokens(12);
    await context.eval(prompt);
    const expected = context.getLogits();

    context.rewind(7);
    expect(context.length).toBe(7);
    await context.eval(prompt.subarray(7));

    expect(context.length).toBe(12);
    expect(Array.from(context.getLogits())).toEqual(Array.from(expected));
    expect((thrown(() => context.rewind(13)) as Error).message).toContain("n is 13 but must be an integer in [0, 12]");
    context.dispose();
  });

  it("overwrites rewound positions with new tokens", async () => {
    const fresh = model.createContext({ contextSize: 32 });
    const reused = model.createContext({ contextSize: 32 });
    await fresh.eval(Int32Array.of(...tokens(4), 77, 78));
    await reused.eval(Int32Array.of(...tokens(4), 5, 6, 7, 8));

    reused.rewind(4);
    await reused.eval(Int32Array.of(77, 78));

    expect(Array.from(reused.getLogits())).toEqual(Array.from(fresh.getLogits()));
    fresh.dispose();
    reused.dispose();
  });

  it("saved state restores the cache and logits", async () => {
    const source = model.createContext({ contextSize: 32 });
    await source.eval(tokens(10));
    const state = await source.saveState();
    await source.eval(Int32Array.of(42));
    const expectedNext = source.getLogits();

    const target = model.createContext({ contextSize: 16 });
    await target.loadState(state);
    expect(target.length).toBe(10);
    await target.eval(Int32Array.of(42));

    expect(Array.from(target.getLogits())).toEqual(Array.from(expectedNext));
    source.dispose();
    target.dispose();
  });

  it("f16 and f32 states differ and reject each other", async () => {
    const half = model.createContext({ contextSize: 32 });
    const full = model.createContext({ contextSize: 32, kvCacheType: "f32" });
    await half.eval(tokens(10));
    await full.eval(tokens(10));
    const halfPrefix = await half.saveState(6);
    const fullPrefix = await full.saveState(6);
    // Header 48 bytes, then 2 layers x (K, V) x 2 kv heads x 6 positions x 16 dims per element.
    expect(halfPrefix.byteLength).toBe(48 + 2 * 2 * 2 * 6 * 16 * 2);
    expect(fullPrefix.byteLength).toBe(48 + 2 * 2 * 2 * 6 * 16 * 4);

    const mismatch = await rejection(model.createContext({ contextSize: 32, kvCacheType: "f32" }).loadState(halfPrefix));
    expect((mismatch as NessoError).code).toBe("INVALID_ARGUMENT");
    expect((mismatch as Error).message).toContain("stores keys and values as F16 but this context's KV cache is F32");

    const target = model.createContext({ contextSize: 32 });
    await target.loadState(halfPrefix);
    await target.eval(tokens(10).subarray(6));
    expect(maxAbsDifference(target.getLogits(), half.getLogits())).toBe(0);
    half.dispose();
    full.dispose();
    target.dispose();
  });

  it("saved prefix state omits logits", async () => {
    const source = model.createContext({ contextSize: 32 });
    const prompt = tokens(10);
    await source.eval(prompt);
    const prefix = await source.saveState(6);
    const full = await source.saveState();
    expect(prefix.byteLength).toBeLessThan(full.byteLength);

    const target = model.createContext({ contextSize: 32 });
    await target.loadState(prefix);
    expect(target.length).toBe(6);
    expect((thrown(() => target.getLogits()) as Error).message).toMatch(/no logits/);
    await target.eval(prompt.subarray(6));
    expect(maxAbsDifference(target.getLogits(), source.getLogits())).toBe(0);
    source.dispose();
    target.dispose();
  });

  it("rejects states of other models or shapes", async () => {
    const context = model.createContext({ contextSize: 32 });
    await context.eval(tokens(6));
    const state = await context.saveState();

    // Same geometry, other weights.
    const other = await addon.loadModel(specFromDirectory(tinyCheckpoint("F32", 2)));
    const otherContext = other.createContext({ contextSize: 32 });
    const foreign = await rejection(otherContext.loadState(state));
    expect((foreign as NessoError).code).toBe("INVALID_ARGUMENT");
    expect((foreign as Error).message).toContain("saved by another model with the same geometry");

    // Other geometry.
    const wide = await addon.loadModel(
      specFromDirectory(cachedCheckpoint({ name: "tiny-f32-kv4-s1", shape: { ...tinyShape, nKvHeads: 4 }, dtype: "F32", seed: 1 })),
    );
    const geometry = await rejection(wide.createContext({ contextSize: 32 }).loadState(state));
    expect((geometry as Error).message).toContain("the state has 2 layers x 2 kv heads x headDim 16 but this model has 2 x 4 x 16");

    // Damaged bytes.
    const truncated = await rejection(context.loadState(state.subarray(0, state.byteLength - 4)));
    expect((truncated as Error).message).toMatch(/truncated or corrupted/);
    const garbage = await rejection(context.loadState(new Uint8Array(100)));
    expect((garbage as Error).message).toMatch(/not a saved context state/);

    // Too long for the target.
    const small = model.createContext({ contextSize: 4 });
    const full = await rejection(small.loadState(state));
    expect((full as NessoError).code).toBe("CONTEXT_FULL");

    expect(context.length).toBe(6);
    small.dispose();
    context.dispose();
    other.dispose();
    wide.dispose();
  });

  it("rejects a second eval while one runs", async () => {
    const context = model.createContext({ contextSize: 2048 });
    const first = context.eval(tokens(1500), { chunkSize: 16 });

    const second = await rejection(context.eval(tokens(1)));
    expect((second as Error).message).toMatch(/eval: the context is busy/);
    expect((thrown(() => context.rewind(0)) as Error).message).toMatch(/rewind: the context is busy/);
    expect((await rejection(context.saveState())) as Error).toBeInstanceOf(NessoError);

    expect(await first).toEqual({ evaluated: 1500, cancelled: false });
    await context.eval(tokens(1));
    expect(context.length).toBe(1501);
    context.dispose();
  });

  it("cancel stops an eval between chunks", async () => {
    const context = model.createContext({ contextSize: 2048 });
    const running = context.eval(tokens(2000), { chunkSize: 8 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    context.cancel();

    const result = await running;

    expect(result.cancelled).toBe(true);
    expect(result.evaluated % 8).toBe(0);
    expect(result.evaluated).toBeLessThan(2000);
    expect(context.length).toBe(result.evaluated);
    // The cache up to the cancellation point is valid: continuing gives the uncancelled logits.
    await context.eval(tokens(2000).subarray(result.evaluated, 100 + result.evaluated));
    const reference = model.createContext({ contextSize: 2048 });
    await reference.eval(tokens(2000).subarray(0, 100 + result.evaluated));
    expect(maxAbsDifference(context.getLogits(), reference.getLogits())).toBeLessThanOrEqual(1e-5 * maxAbs(reference.getLogits()));
    context.dispose();
    reference.dispose();
  });

  it("eval clears an earlier cancel", async () => {
    const context = model.createContext({ contextSize: 16 });
    context.cancel();
    expect(await context.eval(tokens(4))).toEqual({ evaluated: 4, cancelled: false });
    context.dispose();
  });

  it("keeps the event loop turning during a long prefill", async () => {
    const context = model.createContext({ contextSize: 4096 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    await context.eval(tokens(4000), { chunkSize: 64 });
    const elapsed = performance.now() - started;
    clearInterval(timer);

    // A blocked event loop would fire the timer at most once, after the eval.
    expect(elapsed).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThan(5);
    context.dispose();
  });

  it("dispose during an eval is safe", async () => {
    const context = model.createContext({ contextSize: 2048 });
    const running = context.eval(tokens(1000), { chunkSize: 32 });
    context.dispose();
    context.dispose();

    expect(await running).toEqual({ evaluated: 1000, cancelled: false });
    expect(context.length).toBe(0);
    expect(thrown(() => context.getLogits())).toBeInstanceOf(DisposedError);
    expect(await rejection(context.eval(tokens(1)))).toBeInstanceOf(DisposedError);
    expect(() => context.cancel()).not.toThrow();
  });

  it("model dispose disposes its contexts and is safe twice", async () => {
    const own = await addon.loadModel(specFromDirectory(tinyCheckpoint("F32")));
    const context = own.createContext({ contextSize: 1024 });
    const running = context.eval(tokens(600), { chunkSize: 16 });

    own.dispose();
    own.dispose();

    // The running eval finishes on weights that stay mapped until it is done.
    expect((await running).evaluated).toBe(600);
    expect(thrown(() => context.rewind(0))).toBeInstanceOf(DisposedError);
    expect((thrown(() => own.createContext({ contextSize: 8 })) as Error).message).toContain("NativeModel.createContext()");
  });

  it("native classes cannot be constructed from JS", async () => {
    // The wrappers in native.ts hide the native classes, so load the addon file itself: the one
    // NESSO_MCP_ADDON names (the portable-only build in `npm test`), else the default build.
    const override = process.env[addonPathVariable];
    const file = override ? resolve(override) : "../../native/build/Release/nesso_native.node";
    const raw = createRequire(import.meta.url)(file) as {
      loadModel: (spec: unknown) => Promise<{ constructor: new (...args: unknown[]) => unknown; dispose(): void }>;
    };
    const rawModel = await raw.loadModel(specFromDirectory(tinyCheckpoint("F32")));

    expect(() => new rawModel.constructor({})).toThrow(/\[INVALID_ARGUMENT\] NativeModel cannot be constructed directly; use loadModel/);
    rawModel.dispose();
  });
});
