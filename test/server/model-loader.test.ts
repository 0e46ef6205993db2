// The serve model loader on real checkpoints: what it reports about the weights (the nesso://model
// resource and the status tool show this text).

import { describe, expect, it } from "vitest";
import { createModelLoader } from "../../src/server/model-loader.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { cachedConversion, quantSourceCheckpoint } from "../engine/quant-fixtures.js";

describe("serve model loader", () => {
  it("reports a float checkpoint as unquantized with its dtype", async () => {
    const loaded = await createModelLoader({ model: tinyCheckpoint("F32"), threads: 1, contextSize: 64 })(new AbortController().signal);
    try {
      expect(loaded.info.quantization).toBe("none (float32 weights)");
    } finally {
      loaded.dispose();
    }
  });

  it("reports the bits and group size of an MLX quantized checkpoint", async () => {
    const dir = await cachedConversion("quant-q4-g64-s3", quantSourceCheckpoint(), { kind: "quantize", bits: 4, groupSize: 64 });
    const loaded = await createModelLoader({ model: dir, threads: 1, contextSize: 64 })(new AbortController().signal);
    try {
      expect(loaded.info.quantization).toBe("4-bit affine, group size 64, unquantized tensors bfloat16");
    } finally {
      loaded.dispose();
    }
  });
});
