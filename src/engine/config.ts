// config.json of a Llama checkpoint: validation with zod and resolution into the model geometry,
// with the defaults mlx-lm applies (mlx_lm/models/llama.py ModelArgs).

import { z } from "zod";
import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import { resolveQuantization, type QuantizationConfig } from "./quantization.js";

const log = createLogger("engine");

/** Model types that run through the Llama forward pass (mlx-lm remaps mistral onto llama). */
const llamaModelTypes = new Set(["llama", "mistral"]);

/** Context limit when config.json has no max_position_embeddings (the transformers LlamaConfig default). */
const defaultMaxPositionEmbeddings = 2048;

const positiveInt = z.number().int().positive();
const eosIdsSchema = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

const ropeScalingSchema = z
  .object({
    type: z.string().optional(),
    rope_type: z.string().optional(),
    rope_theta: z.number().positive().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: positiveInt.optional(),
  })
  .passthrough();

/** The keys of config.json that the Llama forward pass reads; unknown keys are kept and ignored. */
export const llamaConfigSchema = z
  .object({
    model_type: z.string(),
    hidden_size: positiveInt,
    num_hidden_layers: positiveInt,
    intermediate_size: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt.nullish(),
    head_dim: positiveInt.nullish(),
    rms_norm_eps: z.number().positive(),
    vocab_size: positiveInt,
    rope_theta: z.number().positive().nullish(),
    rope_traditional: z.boolean().nullish(),
    rope_scaling: ropeScalingSchema.nullish(),
    rope_parameters: ropeScalingSchema.nullish(),
    max_position_embeddings: positiveInt.nullish(),
    tie_word_embeddings: z.boolean().nullish(),
    attention_bias: z.boolean().nullish(),
    mlp_bias: z.boolean().nullish(),
    hidden_act: z.string().nullish(),
    layer_types: z.array(z.string()).nullish(),
    eos_token_id: eosIdsSchema.nullish(),
    bos_token_id: z.number().int().nonnegative().nullish(),
    quantization: z.unknown().optional(),
    quantization_config: z.unknown().optional(),
  })
  .passthrough();

export type LlamaConfigJson = z.infer<typeof llamaConfigSchema>;

/** Geometry and RoPE settings resolved from config.json (the checkpoint adds vocabulary sizes). */
export interface ModelConfig {
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ffnDim: number;
  /** vocab_size as config.json states it; the embedding's row count is what the engine uses. */
  configVocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeTraditional: boolean;
  /** Per-pair frequency divisors of length headDim / 2, or null for plain RoPE. */
  ropeFreqFactors: Float32Array | null;
  /** Multiplies positions before the rotation angle is computed. */
  ropePositionScale: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  maxContextSize: number;
  /** eos_token_id of config.json as a list (empty when absent). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** The MLX affine `quantization` block, or null for a float checkpoint. */
  quantization: QuantizationConfig | null;
}

function invalid(fileName: string, message: string): NessoError {
  return new NessoError("INVALID_MODEL", `${fileName}: ${message}`);
}

/** Formats zod issues as "key: problem" pairs for one error line. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(top level)"}: ${issue.message}`)
    .join("; ");
}

/** Parses the text of config.json; `fileName` is used in messages. */
export function parseConfigText(text: string, fileName = "config.json"): ModelConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new NessoError("INVALID_MODEL", `${fileName} is not valid JSON (${(error as Error).message}); download the model again with nesso-mcp pull`, { cause: error });
  }
  return resolveModelConfig(json, fileName);
}

/**
 * Validates a parsed config.json and resolves the mlx-lm defaults: num_key_value_heads =
 * num_attention_heads, head_dim = hidden_size / num_attention_heads, rope_theta = 10000,
 * tie_word_embeddings = true, biases off. Resolves an MLX affine `quantization` block and rejects
 * other quantization formats (UNSUPPORTED).
 */
export function resolveModelConfig(json: unknown, fileName = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw invalid(fileName, `expected a JSON object at the top level but found ${Array.isArray(json) ? "an array" : String(json === null ? "null" : typeof json)}`);
  }
  const raw = json as Record<string, unknown>;
  const quantization = resolveQuantization(raw, fileName);

  const parsed = llamaConfigSchema.safeParse(raw);
  if (!parsed.success) throw invalid(fileName, `invalid config (${describeIssues(parsed.error)})`);
  const config = parsed.data;

  if (!llamaModelTypes.has(config.model_type)) {
    throw new NessoError("UNSUPPORTED", `${fileName}: model_type "${config.model_type}" is not supported; this engine runs Llama-architecture models (model_type "llama")`);
  }
  if (config.hidden_act != null && config.hidden_act !== "silu") {
    throw new NessoError("UNSUPPORTED", `${fileName}: hidden_act "${config.hidden_act}" is not supported; the Llama MLP here uses silu`);
  }
  const slidingLayers = (config.layer_types ?? []).filter((type) => type !== "full_attention");
  if (slidingLayers.length > 0) {
    throw new NessoError("UNSUPPORTED", `${fileName}: layer_types contains "${slidingLayers[0]}"; only full_attention layers are supported`);
  }

  const nHeads = config.num_attention_heads;
  const nKvHeads = config.num_key_value_heads ?? nHeads;
  if (nHeads % nKvHeads !== 0) {
    throw invalid(fileName, `num_attention_heads (${nHeads}) must be a multiple of num_key_value_heads (${nKvHeads})`);
  }
  if (config.head_dim == null && config.hidden_size % nHeads !== 0) {
    throw invalid(fileName, `hidden_size (${config.hidden_size}) is not divisible by num_attention_heads (${nHeads}) and head_dim is not given`);
  }
  const headDim = config.head_dim ?? config.hidden_size / nHeads;
  if (headDim % 2 !== 0) throw invalid(fileName, `head_dim (${headDim}) must be even for RoPE`);

  const rope = resolveRope(config, headDim, fileName);
  const eos = config.eos_token_id;
  return {
    dim: config.hidden_size,
    nLayers: config.num_hidden_layers,
    nHeads,
    nKvHeads,
    headDim,
    ffnDim: config.intermediate_size,
    configVocabSize: config.vocab_size,
    rmsNormEps: config.rms_norm_eps,
    ...rope,
    tieWordEmbeddings: config.tie_word_embeddings ?? true,
    attentionBias: config.attention_bias ?? false,
    mlpBias: config.mlp_bias ?? false,
    maxContextSize: config.max_position_embeddings ?? defaultMaxPositionEmbeddings,
    eosTokenIds: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
    bosTokenId: config.bos_token_id ?? null,
    quantization,
  };
}

type RopeSettings = Pick<ModelConfig, "ropeTheta" | "ropeTraditional" | "ropeFreqFactors" | "ropePositionScale">;

/**
 * Resolves rope_theta and rope_scaling. A transformers-v5 style `rope_parameters` dict is used when
 * rope_theta is absent; its rope_type other than "default" counts as rope_scaling.
 */
function resolveRope(config: LlamaConfigJson, headDim: number, fileName: string): RopeSettings {
  let theta = config.rope_theta ?? undefined;
  let scaling = config.rope_scaling ?? undefined;
  const parameters = config.rope_parameters ?? undefined;
  if (theta === undefined && parameters !== undefined) {
    theta = parameters.rope_theta;
    if (scaling === undefined) scaling = parameters;
    log.info(`${fileName}: no rope_theta, using rope_parameters (rope_theta ${theta ?? 10000}, rope_type ${parameters.rope_type ?? parameters.type ?? "default"})`);
  }
  const ropeTheta = theta ?? 10000;
  const ropeTraditional = config.rope_traditional ?? false;
  const type = scaling?.type ?? scaling?.rope_type ?? "default";

  if (scaling === undefined || type === "default") {
    return { ropeTheta, ropeTraditional, ropeFreqFactors: null, ropePositionScale: 1 };
  }
  const factor = scaling.factor;
  if (factor === undefined) throw invalid(fileName, `rope_scaling of type "${type}" needs a "factor"`);
  if (type === "linear") {
    return { ropeTheta, ropeTraditional, ropeFreqFactors: null, ropePositionScale: 1 / factor };
  }
  if (type === "llama3") {
    const factors = llama3FrequencyFactors(headDim, ropeTheta, {
      factor,
      lowFreqFactor: scaling.low_freq_factor ?? 1,
      highFreqFactor: scaling.high_freq_factor ?? 4,
      originalMaxPositionEmbeddings: scaling.original_max_position_embeddings ?? 8192,
    });
    return { ropeTheta, ropeTraditional, ropeFreqFactors: factors, ropePositionScale: 1 };
  }
  throw new NessoError("UNSUPPORTED", `${fileName}: rope_scaling type "${type}" is not supported; supported types are default, linear and llama3`);
}

export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/**
 * Computes the llama3 RoPE divisors: pair i's frequency base^(-2i/headDim) is divided by the
 * returned factor (`factor` for long wavelengths, 1 for short ones, a smooth blend in between).
 * This is mlx-lm's Llama3RoPE; it matches llama.cpp's rope_freqs tensor.
 */
export function llama3FrequencyFactors(headDim: number, theta: number, scaling: Llama3RopeScaling): Float32Array {
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = scaling;
  const lowFreqWavelength = originalMaxPositionEmbeddings / lowFreqFactor;
  const highFreqWavelength = originalMaxPositionEmbeddings / highFreqFactor;
  const factors = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const period = Math.pow(theta, (2 * i) / headDim);
    const wavelength = 2 * Math.PI * period;
    if (wavelength > lowFreqWavelength) {
      factors[i] = factor;
    } else if (wavelength > highFreqWavelength) {
      const smooth = (originalMaxPositionEmbeddings / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      factors[i] = 1 / ((1 - smooth) / factor + smooth);
    } else {
      factors[i] = 1;
    }
  }
  return factors;
}
