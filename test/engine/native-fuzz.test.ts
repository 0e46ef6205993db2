// Random misuse of the native API: every call either succeeds or fails with a NessoError, and the
// process survives. A crash here would take the whole test file down.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import type { NativeContext, NativeModel } from "../../src/engine/native-api.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { createRandom } from "../fixtures/random.js";
import { specFromDirectory } from "./native-helpers.js";

const addon = loadNativeAddon();

/** Values of every JS type, including typed arrays of the wrong element type and extreme numbers. */
const junk: unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  -(2 ** 60),
  "7",
  "città 🍕",
  {},
  [],
  [1, 2, 3],
  () => 1,
  Symbol("token"),
  10n,
  new Int32Array(0),
  Int32Array.of(1, 2, 3),
  Int32Array.of(-5),
  Int32Array.of(2 ** 31 - 1),
  new Uint8Array(7),
  new Float32Array(4),
  new Float64Array(2),
  new Uint8Array(128262).fill(1),
  { chunkSize: -3 },
  { chunkSize: 2 ** 40 },
  { contextSize: 2 ** 31 },
  { temperature: 1, topK: 1, topP: 1, minP: 0, repeatPenalty: 1, penaltyTokens: null, seed: 1 },
  { temperature: "hot", topK: {}, topP: null },
];

async function settle(call: () => unknown): Promise<void> {
  try {
    await call();
  } catch (error) {
    // Only NessoErrors; a TypeError or RangeError from a missing check would show up here.
    expect(error, String((error as Error)?.message)).toBeInstanceOf(NessoError);
  }
}

describe("native API under random misuse", () => {
  let model: NativeModel;

  beforeAll(async () => {
    model = await addon.loadModel(specFromDirectory(tinyCheckpoint("F32")));
  });

  afterAll(() => {
    model.dispose();
  });

  it("survives random arguments to every method", async () => {
    const random = createRandom(2024);
    const pick = () => junk[Math.floor(random() * junk.length)];
    const context = model.createContext({ contextSize: 64 }) as NativeContext & Record<string, (...args: unknown[]) => unknown>;
    await context.eval(Int32Array.of(1, 2, 3));
    const methods = ["eval", "getLogits", "sample", "rewind", "cancel", "saveState", "loadState"];

    for (let i = 0; i < 400; i++) {
      const method = methods[Math.floor(random() * methods.length)];
      const args = [pick(), pick()];
      await settle(() => context[method](...args));
    }
    await settle(() => model.createContext(pick() as { contextSize: number }));
    for (const value of junk) await settle(() => addon.loadModel(value as never));

    // Still usable afterwards.
    context.rewind(0);
    expect(await context.eval(Int32Array.of(5, 6))).toEqual({ evaluated: 2, cancelled: false });
    context.dispose();
  });

  it("rejects or accepts corrupted states without crashing", async () => {
    const random = createRandom(77);
    const source = model.createContext({ contextSize: 32 });
    await source.eval(Int32Array.of(10, 20, 30, 40));
    const state = await source.saveState();
    const target = model.createContext({ contextSize: 32 });

    for (let i = 0; i < 200; i++) {
      const damaged = state.slice(0, Math.floor(random() * (state.byteLength + 8)));
      // Flip a few bytes, mostly in the 48-byte header where the sizes are.
      for (let flips = 0; flips < 3; flips++) {
        const at = random() < 0.8 ? Math.floor(random() * 48) : Math.floor(random() * damaged.byteLength);
        if (at < damaged.byteLength) damaged[at] ^= 1 << Math.floor(random() * 8);
      }
      await settle(() => target.loadState(damaged));
      expect(target.length).toBeLessThanOrEqual(32);
    }

    await target.loadState(state);
    expect(target.length).toBe(4);
    source.dispose();
    target.dispose();
  });
});
