// Quantized fixture checkpoints: a bf16 random checkpoint whose dims are multiples of 128 (so
// every group size quantizes every linear weight), converted with `nesso-mcp convert`'s writer
// and cached under .fixtures/ like the float fixtures.

import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { convertCheckpoint, type ConvertMode } from "../../src/convert/convert.js";
import { cachedCheckpoint, fixtureCacheDir, nessoVocabSize, type CachedFixtureOptions, type CheckpointShape } from "../fixtures/checkpoint.js";

/** Two layers, GQA, and every input dimension (128, 256) divisible by all group sizes. */
export const quantShape: CheckpointShape = { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 32, ffnDim: 256, vocabSize: nessoVocabSize };

/** Returns the bf16 source checkpoint of the quantized fixtures, generating it on first use. */
export function quantSourceCheckpoint(options: Partial<CachedFixtureOptions> = {}): string {
  return cachedCheckpoint({ name: "quant-bf16-s3", shape: quantShape, dtype: "BF16", seed: 3, ...options });
}

/** Converts `source` into the cached fixture `name` once; later calls return the directory. */
export async function cachedConversion(name: string, source: string, mode: ConvertMode): Promise<string> {
  const dir = join(fixtureCacheDir, name);
  const marker = join(dir, ".complete");
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  await convertCheckpoint({ source, output: dir, mode });
  writeFileSync(marker, new Date().toISOString());
  return dir;
}

/** The quant fixture at `bits` and `groupSize`, and the same weights dequantized to F32. */
export async function quantizedPair(bits: number, groupSize: number): Promise<{ quantized: string; dequantized: string }> {
  const quantized = await cachedConversion(`quant-q${bits}-g${groupSize}-s3`, quantSourceCheckpoint(), { kind: "quantize", bits, groupSize });
  const dequantized = await cachedConversion(`quant-q${bits}-g${groupSize}-s3-f32`, quantized, { kind: "dequantize", dtype: "F32" });
  return { quantized, dequantized };
}
