// A plain JS Llama forward pass, written straight from mlx-lm's llama.py semantics, as the fast
// independent oracle for the native engine on tiny checkpoints: pre-norm blocks, RMSNorm with eps
// inside the square root, rotate-half (or traditional) RoPE, grouped-query attention with query
// head h reading kv head floor(h / (nHeads / nKvHeads)), causal softmax attention scaled by
// headDim^-0.5, SwiGLU MLP, final RMSNorm and the tied (or untied) output head. Values are stored
// as float32 and summed in double precision.

import type { KvCacheType, NativeModelConfig, NativeModelSpec } from "../../src/engine/native-api.js";
import { roundToDtype } from "../../src/convert/float-dtype.js";
import { readTensors } from "./native-helpers.js";

interface Layer {
  attentionNorm: Float32Array;
  query: Float32Array; // [nHeads * headDim, dim]
  key: Float32Array; // [nKvHeads * headDim, dim]
  value: Float32Array; // [nKvHeads * headDim, dim]
  output: Float32Array; // [dim, nHeads * headDim]
  ffnNorm: Float32Array;
  gate: Float32Array; // [ffnDim, dim]
  up: Float32Array; // [ffnDim, dim]
  down: Float32Array; // [dim, ffnDim]
}

/** y [rows] = W [rows, cols] · x [cols] */
function matVec(weights: Float32Array, rows: number, cols: number, x: Float32Array): Float32Array {
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    const base = r * cols;
    for (let k = 0; k < cols; k++) sum += weights[base + k] * x[k];
    y[r] = sum;
  }
  return y;
}

export function rmsNorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
  let sumOfSquares = 0;
  for (const value of x) sumOfSquares += value * value;
  const inverse = 1 / Math.sqrt(sumOfSquares / x.length + eps);
  return x.map((value, i) => weight[i] * (value * inverse));
}

/** Rotates one head vector in place at `position`. */
export function rope(head: Float32Array, position: number, config: NativeModelConfig): void {
  const half = config.headDim / 2;
  for (let i = 0; i < half; i++) {
    let inverseFrequency = config.ropeTheta ** ((-2 * i) / config.headDim);
    if (config.ropeFreqFactors) inverseFrequency /= config.ropeFreqFactors[i];
    const angle = position * config.ropePositionScale * inverseFrequency;
    const [first, second] = config.ropeTraditional ? [2 * i, 2 * i + 1] : [i, i + half];
    const a = head[first];
    const b = head[second];
    head[first] = a * Math.cos(angle) - b * Math.sin(angle);
    head[second] = a * Math.sin(angle) + b * Math.cos(angle);
  }
}

export class ReferenceModel {
  private readonly embedding: Float32Array;
  private readonly outputHead: Float32Array;
  private readonly finalNorm: Float32Array;
  private readonly layers: Layer[] = [];
  /** Per layer, the post-RoPE keys and the values of every evaluated position ([headDim] each). */
  private keys: Float32Array[][][] = [];
  private values: Float32Array[][][] = [];
  private position = 0;

  /**
   * kvCacheType "f16" rounds the stored keys and values to float16, as a context with an f16 KV
   * cache stores them (default "f32": kept exact).
   */
  constructor(
    readonly config: NativeModelConfig,
    spec: NativeModelSpec,
    private readonly kvCacheType: KvCacheType = "f32",
  ) {
    const tensors = readTensors(spec);
    const get = (name: string) => {
      const tensor = tensors.get(name);
      if (!tensor) throw new Error(`reference model: tensor ${name} is missing`);
      return tensor.values;
    };
    this.embedding = get("model.embed_tokens.weight");
    this.outputHead = config.tieWordEmbeddings ? this.embedding : get("lm_head.weight");
    this.finalNorm = get("model.norm.weight");
    for (let i = 0; i < config.nLayers; i++) {
      const prefix = `model.layers.${i}.`;
      this.layers.push({
        attentionNorm: get(prefix + "input_layernorm.weight"),
        query: get(prefix + "self_attn.q_proj.weight"),
        key: get(prefix + "self_attn.k_proj.weight"),
        value: get(prefix + "self_attn.v_proj.weight"),
        output: get(prefix + "self_attn.o_proj.weight"),
        ffnNorm: get(prefix + "post_attention_layernorm.weight"),
        gate: get(prefix + "mlp.gate_proj.weight"),
        up: get(prefix + "mlp.up_proj.weight"),
        down: get(prefix + "mlp.down_proj.weight"),
      });
    }
    this.reset();
  }

  reset(): void {
    this.keys = this.layers.map(() => Array.from({ length: this.config.nKvHeads }, () => []));
    this.values = this.layers.map(() => Array.from({ length: this.config.nKvHeads }, () => []));
    this.position = 0;
  }

  /** Evaluates tokens one position at a time and returns the logits of the last one. */
  evaluate(tokens: number[]): Float32Array {
    tokens.slice(0, -1).forEach((token) => this.step(token, false));
    return this.step(tokens[tokens.length - 1]);
  }

  /** Evaluates one token at the next position and returns its logits [vocabSize] (empty when not wanted). */
  step(token: number, wantLogits = true): Float32Array {
    const { dim, nHeads, nKvHeads, headDim, ffnDim, vocabSize, rmsNormEps } = this.config;
    const group = nHeads / nKvHeads;
    const scale = 1 / Math.sqrt(headDim);
    const position = this.position++;

    // h = Embed(token)
    let h = this.embedding.slice(token * dim, (token + 1) * dim);

    this.layers.forEach((layer, layerIndex) => {
      // Attention block.
      const x = rmsNorm(h, layer.attentionNorm, rmsNormEps);
      const q = matVec(layer.query, nHeads * headDim, dim, x);
      const k = matVec(layer.key, nKvHeads * headDim, dim, x);
      const v = matVec(layer.value, nKvHeads * headDim, dim, x);
      for (let head = 0; head < nHeads; head++) rope(q.subarray(head * headDim, (head + 1) * headDim), position, this.config);
      for (let kvHead = 0; kvHead < nKvHeads; kvHead++) {
        const key = k.slice(kvHead * headDim, (kvHead + 1) * headDim);
        rope(key, position, this.config);
        const value = v.slice(kvHead * headDim, (kvHead + 1) * headDim);
        this.keys[layerIndex][kvHead].push(this.kvCacheType === "f16" ? roundToDtype(key, "F16") : key);
        this.values[layerIndex][kvHead].push(this.kvCacheType === "f16" ? roundToDtype(value, "F16") : value);
      }

      const attention = new Float32Array(nHeads * headDim);
      for (let head = 0; head < nHeads; head++) {
        const kvHead = Math.floor(head / group);
        const keys = this.keys[layerIndex][kvHead];
        const values = this.values[layerIndex][kvHead];
        const query = q.subarray(head * headDim, (head + 1) * headDim);
        const scores = keys.map((key) => {
          let sum = 0;
          for (let d = 0; d < headDim; d++) sum += query[d] * scale * key[d];
          return sum;
        });
        const max = Math.max(...scores);
        const weights = scores.map((score) => Math.exp(score - max));
        const total = weights.reduce((a, b) => a + b, 0);
        for (let j = 0; j < keys.length; j++) {
          const p = weights[j] / total;
          for (let d = 0; d < headDim; d++) attention[head * headDim + d] += p * values[j][d];
        }
      }
      const attended = matVec(layer.output, dim, nHeads * headDim, attention);
      h = h.map((value, i) => value + attended[i]);

      // MLP block.
      const y = rmsNorm(h, layer.ffnNorm, rmsNormEps);
      const gate = matVec(layer.gate, ffnDim, dim, y);
      const up = matVec(layer.up, ffnDim, dim, y);
      const hidden = gate.map((z, i) => (z / (1 + Math.exp(-z))) * up[i]);
      const down = matVec(layer.down, dim, ffnDim, hidden);
      h = h.map((value, i) => value + down[i]);
    });

    if (!wantLogits) return new Float32Array(0);

    // logits = RMSNorm(h) · Eᵀ, ids the tokenizer lacks masked.
    const logits = matVec(this.outputHead, vocabSize, dim, rmsNorm(h, this.finalNorm, rmsNormEps));
    logits.fill(-Infinity, this.config.tokenizerVocabSize);
    return logits;
  }
}
