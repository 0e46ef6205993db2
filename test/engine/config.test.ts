import { describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { llama3FrequencyFactors, parseConfigText, resolveModelConfig } from "../../src/engine/config.js";
import { checkpointConfig, nessoShape } from "../fixtures/checkpoint.js";

const nessoConfig = () => checkpointConfig(nessoShape, "BF16", {} as never);

function errorOf(action: () => unknown): NessoError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(NessoError);
    return error as NessoError;
  }
  throw new Error("expected an error");
}

describe("config.json resolution", () => {
  it("resolves Nesso's geometry", () => {
    const config = resolveModelConfig(nessoConfig());
    expect(config.dim).toBe(960);
    expect(config.nLayers).toBe(32);
    expect(config.nHeads).toBe(15);
    expect(config.nKvHeads).toBe(5);
    expect(config.headDim).toBe(64);
    expect(config.ffnDim).toBe(2560);
    expect(config.ropeTheta).toBe(10000);
    expect(config.ropeFreqFactors).toBeNull();
    expect(config.ropePositionScale).toBe(1);
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.maxContextSize).toBe(4096);
    expect(config.eosTokenIds).toEqual([128256]);
  });

  it("applies the mlx-lm defaults", () => {
    const config = resolveModelConfig({
      model_type: "llama",
      hidden_size: 64,
      num_hidden_layers: 2,
      intermediate_size: 128,
      num_attention_heads: 4,
      rms_norm_eps: 1e-6,
      vocab_size: 1000,
    });
    expect(config.nKvHeads).toBe(4);
    expect(config.headDim).toBe(16);
    expect(config.ropeTheta).toBe(10000);
    expect(config.ropeTraditional).toBe(false);
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.attentionBias).toBe(false);
    expect(config.mlpBias).toBe(false);
    expect(config.maxContextSize).toBe(2048);
    expect(config.eosTokenIds).toEqual([]);
  });

  it("accepts eos ids as a list", () => {
    expect(resolveModelConfig({ ...nessoConfig(), eos_token_id: [128001, 128256] }).eosTokenIds).toEqual([128001, 128256]);
  });

  it("reads untied heads, biases and traditional RoPE", () => {
    const config = resolveModelConfig({ ...nessoConfig(), tie_word_embeddings: false, attention_bias: true, mlp_bias: true, rope_traditional: true, head_dim: 32 });
    expect(config.tieWordEmbeddings).toBe(false);
    expect(config.attentionBias).toBe(true);
    expect(config.mlpBias).toBe(true);
    expect(config.ropeTraditional).toBe(true);
    expect(config.headDim).toBe(32);
  });

  it("computes llama3 frequency factors", () => {
    const scaling = { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: "llama3" };
    const config = resolveModelConfig({ ...nessoConfig(), rope_theta: 500000, rope_scaling: scaling });
    const factors = config.ropeFreqFactors!;
    expect(factors).toHaveLength(32);
    // Wavelength 2π·500000^(2i/64): pair 14 is 1956.5 (below λ_hi = 2048, unchanged), pairs
    // 15..17 are 2948..6695 (blended), pair 18 is 10089 (above λ_lo = 8192, divided by 32).
    expect(factors[0]).toBe(1);
    expect(factors[14]).toBe(1);
    expect(factors[18]).toBe(32);
    expect(factors[31]).toBe(32);
    for (const i of [15, 16, 17]) {
      expect(factors[i]).toBeGreaterThan(1);
      expect(factors[i]).toBeLessThan(32);
    }
    for (let i = 1; i < factors.length; i++) expect(factors[i]).toBeGreaterThanOrEqual(factors[i - 1]);
  });

  it("matches a hand-computed llama3 blend", () => {
    // headDim 4, theta 10000: pair 1 has period 100, wavelength 2π·100 ≈ 628.3. With orig 1000,
    // low 1, high 4: λ_lo = 1000, λ_hi = 250, so pair 1 is medium: smooth = (1000/628.3 - 1)/3.
    const factors = llama3FrequencyFactors(4, 10000, { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 1000 });
    const smooth = (1000 / (2 * Math.PI * 100) - 1) / 3;
    expect(factors[0]).toBe(1);
    expect(factors[1]).toBeCloseTo(1 / ((1 - smooth) / 8 + smooth), 5);
  });

  it("maps linear scaling to a position scale", () => {
    const config = resolveModelConfig({ ...nessoConfig(), rope_scaling: { type: "linear", factor: 4 } });
    expect(config.ropePositionScale).toBe(0.25);
    expect(config.ropeFreqFactors).toBeNull();
  });

  it("falls back to rope_parameters", () => {
    const raw = { ...nessoConfig(), rope_parameters: { rope_theta: 500000, rope_type: "default" } } as Record<string, unknown>;
    delete raw.rope_theta;
    expect(resolveModelConfig(raw).ropeTheta).toBe(500000);
  });

  it("rejects quantization it cannot compute", () => {
    const fpMode = errorOf(() => resolveModelConfig({ ...nessoConfig(), quantization: { group_size: 32, bits: 4, mode: "mxfp4" } }));
    expect(fpMode.code).toBe("UNSUPPORTED");
    expect(fpMode.message).toContain('"mxfp4"');
    const hfPacking = errorOf(() => resolveModelConfig({ ...nessoConfig(), quantization_config: { quant_method: "gptq", bits: 4 } }));
    expect(hfPacking.code).toBe("UNSUPPORTED");
    expect(hfPacking.message).toContain('quant_method is "gptq"');
  });

  it("rejects invalid JSON", () => {
    const error = errorOf(() => parseConfigText('{"hidden_size": 64,'));
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toMatch(/^config\.json is not valid JSON/);
    expect(error.message).toContain("nesso-mcp pull");
  });

  it("rejects missing and mistyped keys", () => {
    const { hidden_size: _dropped, ...noHidden } = nessoConfig() as Record<string, unknown>;
    expect(errorOf(() => resolveModelConfig(noHidden)).message).toContain("hidden_size");
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), num_hidden_layers: "32" })).message).toContain("num_hidden_layers");
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), rms_norm_eps: -1 })).message).toContain("rms_norm_eps");
    expect(errorOf(() => resolveModelConfig([])).message).toContain("an array");
  });

  it("rejects inconsistent geometry", () => {
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), num_key_value_heads: 4 })).message).toContain("multiple of num_key_value_heads (4)");
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), head_dim: 63 })).message).toContain("head_dim (63) must be even");
  });

  it("rejects unsupported architectures and scalings", () => {
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), model_type: "qwen2" })).code).toBe("UNSUPPORTED");
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), rope_scaling: { type: "yarn", factor: 4 } })).message).toContain('rope_scaling type "yarn"');
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), rope_scaling: { type: "llama3" } })).message).toContain('needs a "factor"');
    expect(errorOf(() => resolveModelConfig({ ...nessoConfig(), layer_types: ["sliding_attention"] })).code).toBe("UNSUPPORTED");
  });
});
