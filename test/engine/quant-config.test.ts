// The `quantization` block of config.json: global parameters, per-module overrides and the
// formats the engine rejects.

import { describe, expect, it } from "vitest";
import { describeQuantization, paramsFor, resolveQuantization } from "../../src/engine/quantization.js";
import { NessoError } from "../../src/errors.js";

function rejection(raw: Record<string, unknown>): NessoError {
  try {
    resolveQuantization(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(NessoError);
    return error as NessoError;
  }
  throw new Error(`${JSON.stringify(raw)} was accepted`);
}

describe("quantization block", () => {
  it("is null for a float checkpoint", () => {
    expect(resolveQuantization({ hidden_size: 64 })).toBeNull();
  });

  it("reads the global parameters", () => {
    const quantization = resolveQuantization({ quantization: { group_size: 64, bits: 4, mode: "affine" } })!;
    expect(quantization.global).toEqual({ bits: 4, groupSize: 64 });
    expect(quantization.overrides.size).toBe(0);
    expect(describeQuantization(quantization)).toBe("4-bit affine, group size 64");
  });

  it("treats a missing mode as affine", () => {
    expect(resolveQuantization({ quantization: { group_size: 32, bits: 8 } })!.global).toEqual({ bits: 8, groupSize: 32 });
  });

  it("falls back to quantization_config", () => {
    expect(resolveQuantization({ quantization_config: { group_size: 128, bits: 2 } })!.global).toEqual({ bits: 2, groupSize: 128 });
  });

  it("reads per-module overrides of a mixed recipe", () => {
    const quantization = resolveQuantization({
      quantization: {
        group_size: 64,
        bits: 3,
        mode: "affine",
        "model.layers.0.mlp.down_proj": { group_size: 64, bits: 6, mode: "affine" },
        "model.embed_tokens": { bits: 8 },
        "model.layers.1.self_attn.q_proj": false,
      },
    })!;
    expect(paramsFor(quantization, "model.layers.0.mlp.down_proj")).toEqual({ bits: 6, groupSize: 64 });
    // A partial override takes the missing keys from the global parameters.
    expect(paramsFor(quantization, "model.embed_tokens")).toEqual({ bits: 8, groupSize: 64 });
    expect(paramsFor(quantization, "model.layers.0.mlp.up_proj")).toEqual({ bits: 3, groupSize: 64 });
    expect(quantization.overrides.has("model.layers.1.self_attn.q_proj")).toBe(false);
  });

  it("rejects the fp modes with a conversion hint", () => {
    for (const mode of ["mxfp4", "nvfp4", "mxfp8"]) {
      const error = rejection({ quantization: { group_size: 32, bits: 4, mode } });
      expect(error.code, mode).toBe("UNSUPPORTED");
      expect(error.message, mode).toContain(`floating-point quantization mode "${mode}"`);
      expect(error.message, mode).toContain("nesso-mcp convert --dequantize");
    }
  });

  it("rejects an fp mode in a per-module override", () => {
    const error = rejection({ quantization: { group_size: 64, bits: 4, "model.layers.0.mlp.down_proj": { mode: "mxfp8", bits: 8, group_size: 32 } } });
    expect(error.code).toBe("UNSUPPORTED");
    expect(error.message).toContain('quantization["model.layers.0.mlp.down_proj"]');
  });

  it("rejects Hugging Face quant_method packings", () => {
    for (const method of ["awq", "gptq", "bitnet", "compressed-tensors"]) {
      const error = rejection({ quantization_config: { quant_method: method, bits: 4 } });
      expect(error.code, method).toBe("UNSUPPORTED");
      expect(error.message, method).toContain(`quant_method is "${method}"`);
    }
  });

  it("rejects unsupported bits and group sizes", () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ group_size: 64, bits: 7 }, "UNSUPPORTED", "quantization.bits is 7 but affine quantization supports bits 2, 3, 4, 5, 6, 8"],
      [{ group_size: 16, bits: 4 }, "UNSUPPORTED", "quantization.group_size is 16 but affine quantization supports group sizes 32, 64, 128"],
      [{ group_size: 64 }, "INVALID_MODEL", "quantization.bits is undefined"],
      [{ group_size: 64, bits: 4, mode: 3 }, "INVALID_MODEL", "quantization.mode must be a string"],
    ];
    for (const [block, code, message] of cases) {
      const error = rejection({ quantization: block });
      expect(error.code, JSON.stringify(block)).toBe(code);
      expect(error.message, JSON.stringify(block)).toContain(message);
    }
  });

  it("rejects an override that is not an object", () => {
    const error = rejection({ quantization: { group_size: 64, bits: 4, "model.norm": 3 } });
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain('quantization["model.norm"] must be a per-module object');
  });
});
