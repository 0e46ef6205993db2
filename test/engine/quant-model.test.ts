// Quantized checkpoints through the whole engine: for every bit width and group size, the
// quantized fixture gives the logits and greedy tokens of the same weights dequantized to F32;
// mixed recipes, float layers, an untied quantized head and loader errors.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/convert/convert.js";
import { buildModelSpec, readCheckpointTensors } from "../../src/engine/checkpoint.js";
import { parseConfigText } from "../../src/engine/config.js";
import { Model } from "../../src/engine/model.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { TextTokenizer } from "../../src/engine/tokenizer.js";
import { NessoError } from "../../src/errors.js";
import { nessoVocabSize } from "../fixtures/checkpoint.js";
import { cloneCheckpoint, collect, makeTempDir } from "./helpers.js";
import { argmax, maxAbs, maxAbsDifference } from "./native-helpers.js";
import { cachedConversion, quantizedPair, quantSourceCheckpoint } from "./quant-fixtures.js";

// These tests check the float-activation kernels at float32 rounding bounds; the default int8
// activations of 4- and 8-bit weights are tested in quant-int8.test.ts.
process.env.NESSO_MCP_QUANT_ACTIVATIONS = "float";

const greedySteps = 16;
/**
 * Bound on max |Δlogit| / max |logit| between a quantized checkpoint and its F32 dequantization.
 * Both compute the same weights in float32; only the summation order differs (scale · Σq·x +
 * bias · Σx per group versus Σ w·x). Measured ratios are below 1e-6.
 */
const relativeTolerance = 1e-5;

const temp = makeTempDir("nesso-quant-");
afterAll(() => temp.remove());

interface Run {
  /** Logits after the prompt and after the prompt plus all greedy tokens. */
  logits: Float32Array[];
  tokens: number[];
}

const promptText = "<|im_start|>user\nQual è la capitale d'Italia? Answer in one word 🙂<|im_end|>\n<|im_start|>assistant\n";

/**
 * Evaluates a bilingual prompt and `greedySteps` argmax tokens through Model (the TS loader,
 * tokenizer and session), reusing the cached prefix.
 */
async function greedyRun(dir: string): Promise<Run> {
  const model = await Model.load(dir, { threads: 2 });
  try {
    const session = model.createSession({ contextSize: 128, kvCacheType: "f32" });
    const prompt = model.encode(promptText);
    const logits: Float32Array[] = [];
    const tokens: number[] = [];
    for (let step = 0; step <= greedySteps; step++) {
      await collect(session.generate([...prompt, ...tokens], { maxTokens: 0 }));
      const row = session.getLogits();
      if (step === 0 || step === greedySteps) logits.push(row);
      if (step < greedySteps) tokens.push(argmax(row));
    }
    return { logits, tokens };
  } finally {
    model.dispose();
  }
}

let promptIds: Int32Array | null = null;

/**
 * Runs the same steps on the native addon with the spec from buildModelSpec. This skips loading
 * the tokenizer for each of the 36 checkpoints of the bit-width sweep.
 */
async function nativeGreedyRun(dir: string): Promise<Run> {
  promptIds ??= Int32Array.from((await TextTokenizer.load(dir)).encode(promptText));
  const config = parseConfigText(readFileSync(join(dir, "config.json"), "utf8"));
  const spec = buildModelSpec(config, await readCheckpointTensors(dir), { tokenizerVocabSize: nessoVocabSize });
  const model = await loadNativeAddon().loadModel({ ...spec, threads: 2 });
  try {
    const context = model.createContext({ contextSize: 128, kvCacheType: "f32" });
    await context.eval(promptIds);
    const logits: Float32Array[] = [context.getLogits()];
    const tokens: number[] = [];
    for (let step = 0; step < greedySteps; step++) {
      tokens.push(argmax(context.getLogits()));
      await context.eval(Int32Array.of(tokens[step]));
    }
    logits.push(context.getLogits());
    return { logits, tokens };
  } finally {
    model.dispose();
  }
}

function relativeDifference(a: Run, b: Run): number {
  let difference = 0;
  let magnitude = 0;
  for (let i = 0; i < a.logits.length; i++) {
    difference = Math.max(difference, maxAbsDifference(a.logits[i], b.logits[i]));
    magnitude = Math.max(magnitude, maxAbs(b.logits[i]));
  }
  return difference / magnitude;
}

describe("quantized checkpoints", () => {
  for (const bits of [2, 3, 4, 5, 6, 8]) {
    it(`match their dequantized weights at ${bits} bits`, { timeout: 120_000 }, async () => {
      for (const groupSize of [32, 64, 128]) {
        const { quantized, dequantized } = await quantizedPair(bits, groupSize);
        const ours = await nativeGreedyRun(quantized);
        const reference = await nativeGreedyRun(dequantized);
        const ratio = relativeDifference(ours, reference);
        console.info(`${bits}-bit g${groupSize}: max |Δlogit| / max |logit| = ${ratio.toExponential(2)}`);
        expect(ratio, `g${groupSize}`).toBeLessThanOrEqual(relativeTolerance);
        expect(ours.tokens, `g${groupSize}`).toEqual(reference.tokens);
      }
    });
  }

  it("follows a mixed recipe with float layers", { timeout: 60_000 }, async () => {
    const source = quantSourceCheckpoint();
    const quantized = await cachedConversion("quant-mixed-s3", source, {
      kind: "quantize",
      bits: 4,
      groupSize: 64,
      overrides: {
        "model.layers.0.self_attn.v_proj": { bits: 6, groupSize: 32 },
        "model.layers.1.mlp.down_proj": { bits: 8, groupSize: 128 },
        "model.layers.1.self_attn.q_proj": false,
      },
    });
    const config = JSON.parse(readFileSync(join(quantized, "config.json"), "utf8")) as { quantization: Record<string, unknown> };
    expect(config.quantization["model.layers.0.self_attn.v_proj"]).toEqual({ group_size: 32, bits: 6, mode: "affine" });
    expect(config.quantization["model.layers.1.mlp.down_proj"]).toEqual({ group_size: 128, bits: 8, mode: "affine" });
    expect(config.quantization["model.layers.1.self_attn.q_proj"]).toBeUndefined();

    const dequantized = await cachedConversion("quant-mixed-s3-f32", quantized, { kind: "dequantize", dtype: "F32" });
    const ours = await greedyRun(quantized);
    const reference = await greedyRun(dequantized);
    expect(relativeDifference(ours, reference)).toBeLessThanOrEqual(relativeTolerance);
    expect(ours.tokens).toEqual(reference.tokens);
  });

  it("quantizes an untied output head", { timeout: 60_000 }, async () => {
    const source = quantSourceCheckpoint({ name: "quant-bf16-untied-s4", seed: 4, untied: true });
    const quantized = await cachedConversion("quant-untied-q4-g32-s4", source, { kind: "quantize", bits: 4, groupSize: 32 });
    const header = readFileSync(join(quantized, "model.safetensors.index.json"), "utf8");
    expect(header).toContain('"lm_head.scales"');
    const dequantized = await cachedConversion("quant-untied-q4-g32-s4-f32", quantized, { kind: "dequantize", dtype: "F32" });
    const ours = await greedyRun(quantized);
    const reference = await greedyRun(dequantized);
    expect(relativeDifference(ours, reference)).toBeLessThanOrEqual(relativeTolerance);
    expect(ours.tokens).toEqual(reference.tokens);
  });
});

describe("quantized loader errors", () => {
  /** A writable copy of the 4-bit g64 fixture with config.json edited by `edit`. */
  async function editedConfig(name: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
    const { quantized } = await quantizedPair(4, 64);
    const dir = join(temp.dir, name);
    mkdirSync(dir, { recursive: true });
    cloneCheckpoint(quantized, dir, ["config.json"]);
    const path = join(dir, "config.json");
    const config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    edit(config);
    writeFileSync(path, JSON.stringify(config));
    return dir;
  }

  async function loadError(dir: string): Promise<NessoError> {
    try {
      const model = await Model.load(dir);
      model.dispose();
    } catch (error) {
      expect(error).toBeInstanceOf(NessoError);
      return error as NessoError;
    }
    throw new Error(`${dir} loaded but was expected to fail`);
  }

  it("rejects bits that disagree with the packing", async () => {
    const dir = await editedConfig("wrong-bits", (config) => {
      config.quantization = { group_size: 64, bits: 8, mode: "affine" };
      delete config.quantization_config;
    });
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toMatch(/packed at 8 bits, from quantization/);
  });

  it("rejects a group size that disagrees with the scales", async () => {
    const dir = await editedConfig("wrong-group", (config) => {
      config.quantization = { group_size: 32, bits: 4, mode: "affine" };
      delete config.quantization_config;
    });
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toMatch(/scales" has shape \[\d+,2\] but config.json implies \[\d+,4\]/);
  });

  it("rejects scales without a quantization block", async () => {
    const dir = await editedConfig("no-block", (config) => {
      delete config.quantization;
      delete config.quantization_config;
    });
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain('has no "quantization" block');
  });

  it("rejects the fp quantization modes", async () => {
    for (const mode of ["mxfp4", "nvfp4", "mxfp8"]) {
      const dir = await editedConfig(`mode-${mode}`, (config) => {
        config.quantization = { group_size: 32, bits: mode === "mxfp8" ? 8 : 4, mode };
        delete config.quantization_config;
      });
      const error = await loadError(dir);
      expect(error.code, mode).toBe("UNSUPPORTED");
      expect(error.message, mode).toContain(`floating-point quantization mode "${mode}"`);
    }
  });

  it("rejects Hugging Face quant_method packings", async () => {
    const dir = await editedConfig("awq", (config) => {
      delete config.quantization;
      config.quantization_config = { quant_method: "awq", bits: 4 };
    });
    const error = await loadError(dir);
    expect(error.code).toBe("UNSUPPORTED");
    expect(error.message).toContain('quant_method is "awq"');
  });

  it("rejects quantizing a quantized checkpoint", async () => {
    const { quantized } = await quantizedPair(4, 64);
    await expect(convertCheckpoint({ source: quantized, output: join(temp.dir, "twice"), mode: { kind: "quantize", bits: 4, groupSize: 64 } })).rejects.toThrow(/is already quantized; dequantize the checkpoint first/);
  });
});
