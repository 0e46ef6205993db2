// The `quantization` block of an MLX config.json: global affine parameters plus per-module
// overrides, resolved into the parameters of each quantized weight.
//
// mlx-lm writes {"group_size": G, "bits": B, "mode": "affine"} and, for mixed recipes, one extra
// entry per module path ("model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 6}). A module
// is quantized exactly when its "<path>.scales" tensor exists; its parameters come from its own
// entry when there is one, else from the global ones (mlx_lm/utils.py load_model, mlx-lm 0.28).

import { NessoError } from "../errors.js";

/** Affine bit widths MLX supports (mlx/ops.cpp affine_quantize rejects 1, 7 and above 8). */
export const affineBits = [2, 3, 4, 5, 6, 8] as const;
/** Group sizes MLX supports for affine quantization. */
export const affineGroupSizes = [32, 64, 128] as const;

/** MLX's floating-point quantization modes, which this engine does not compute with. */
const fpModes = new Set(["mxfp4", "nvfp4", "mxfp8"]);

/** Parameters of one affine-quantized weight: w = scale · q + bias per group of `groupSize` inputs. */
export interface AffineParams {
  bits: number;
  groupSize: number;
}

/** The resolved `quantization` block. */
export interface QuantizationConfig {
  /** Parameters of modules without an entry of their own. */
  global: AffineParams;
  /** Per-module parameters keyed by module path (the weight name without ".weight"). */
  overrides: Map<string, AffineParams>;
}

function unsupportedMode(fileName: string, where: string, mode: string): NessoError {
  if (fpModes.has(mode)) {
    return new NessoError(
      "UNSUPPORTED",
      `${fileName}: ${where} uses the MLX floating-point quantization mode "${mode}", which this engine does not compute with; convert the model with affine quantization (mlx_lm.convert --q-mode affine) or dequantize it (nesso-mcp convert --dequantize)`,
    );
  }
  return new NessoError("UNSUPPORTED", `${fileName}: ${where} has quantization mode "${mode}"; supported modes are "affine" (the default) only`);
}

/**
 * Validates one {group_size, bits, mode} dict. `fallback` fills keys the dict leaves out, as
 * mlx-lm's nn.quantize does for per-module entries.
 */
function parseParams(value: unknown, fileName: string, where: string, fallback: AffineParams | null): AffineParams {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new NessoError("INVALID_MODEL", `${fileName}: ${where} must be an object like {"group_size": 64, "bits": 4, "mode": "affine"} but is ${JSON.stringify(value)}`);
  }
  const dict = value as Record<string, unknown>;
  const mode = dict.mode ?? "affine";
  if (typeof mode !== "string") {
    throw new NessoError("INVALID_MODEL", `${fileName}: ${where}.mode must be a string but is ${JSON.stringify(mode)}`);
  }
  if (mode !== "affine") throw unsupportedMode(fileName, where, mode);

  const bits = dict.bits ?? fallback?.bits;
  const groupSize = dict.group_size ?? fallback?.groupSize;
  if (typeof bits !== "number" || !(affineBits as readonly number[]).includes(bits)) {
    throw new NessoError(
      bits === undefined ? "INVALID_MODEL" : "UNSUPPORTED",
      `${fileName}: ${where}.bits is ${JSON.stringify(bits)} but affine quantization supports bits ${affineBits.join(", ")}`,
    );
  }
  if (typeof groupSize !== "number" || !(affineGroupSizes as readonly number[]).includes(groupSize)) {
    throw new NessoError(
      groupSize === undefined ? "INVALID_MODEL" : "UNSUPPORTED",
      `${fileName}: ${where}.group_size is ${JSON.stringify(groupSize)} but affine quantization supports group sizes ${affineGroupSizes.join(", ")}`,
    );
  }
  return { bits, groupSize };
}

/**
 * Resolves the `quantization` and `quantization_config` keys of config.json. Returns null for a
 * float checkpoint. Rejects (UNSUPPORTED) the MLX fp modes and the Hugging Face packings that
 * carry a `quant_method` (awq, gptq, bitnet, …), which mlx-lm converts at load time.
 */
export function resolveQuantization(raw: Record<string, unknown>, fileName = "config.json"): QuantizationConfig | null {
  const hfConfig = raw.quantization_config;
  if (typeof hfConfig === "object" && hfConfig !== null && "quant_method" in hfConfig) {
    const method = JSON.stringify((hfConfig as Record<string, unknown>).quant_method);
    throw new NessoError(
      "UNSUPPORTED",
      `${fileName}: quantization_config.quant_method is ${method}, a Hugging Face packing that this engine does not read; use an MLX checkpoint (mlx_lm.convert) or a bf16/fp16/fp32 one`,
    );
  }
  const block = raw.quantization ?? hfConfig;
  if (block == null) return null;
  const where = raw.quantization != null ? "quantization" : "quantization_config";

  const global = parseParams(block, fileName, where, null);
  const overrides = new Map<string, AffineParams>();
  for (const [key, value] of Object.entries(block as Record<string, unknown>)) {
    if (key === "group_size" || key === "bits" || key === "mode") continue;
    // A `false` entry marks a module left in float, which has no scales tensor.
    if (value === false) continue;
    if (typeof value !== "object" || value === null) {
      throw new NessoError("INVALID_MODEL", `${fileName}: ${where}["${key}"] must be a per-module object like {"group_size": 64, "bits": 6} but is ${JSON.stringify(value)}`);
    }
    overrides.set(key, parseParams(value, fileName, `${where}["${key}"]`, global));
  }
  return { global, overrides };
}

/** Parameters of the module at `path` (a weight name without ".weight"). */
export function paramsFor(quantization: QuantizationConfig, path: string): AffineParams {
  return quantization.overrides.get(path) ?? quantization.global;
}

/** Columns of the packed U32 weight of a row with `inputs` elements: inputs · bits / 32. */
export function packedColumns(inputs: number, bits: number): number {
  return (inputs * bits) / 32;
}

/** A short description such as "4-bit affine, group size 64 (3 modules with overrides)". */
export function describeQuantization(quantization: QuantizationConfig | null): string {
  if (quantization === null) return "none";
  const { bits, groupSize } = quantization.global;
  const overrides = quantization.overrides.size;
  const suffix = overrides > 0 ? ` (${overrides} modules with their own parameters)` : "";
  return `${bits}-bit affine, group size ${groupSize}${suffix}`;
}
