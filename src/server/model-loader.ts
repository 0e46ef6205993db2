// The default model loader of `serve`: resolves `--model` (a directory or a cached Hub repo, never a
// download), loads it into the native engine and opens one session.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelGrammars } from "../tool-calling/grammar/model-grammars.js";
import type { LoadedModel, ModelLoader } from "./model-slot.js";

export interface ModelLoaderOptions {
  /** Model directory or Hub repo id (default: the default repo in the Hub cache). */
  model?: string;
  /** Branch, tag or commit of a repo id (default main). */
  revision?: string;
  /** Compute threads (default: physical cores). */
  threads?: number;
  /** KV cache positions (default: the model's max_position_embeddings). */
  contextSize?: number;
}

/**
 * Creates the loader the server calls on first use. The engine and the Hub modules are imported
 * only then, so a server that never generates never loads the native addon.
 */
export function createModelLoader(options: ModelLoaderOptions): ModelLoader {
  return async (signal: AbortSignal): Promise<LoadedModel> => {
    const { resolveModelReference } = await import("../hub/index.js");
    const { EngineChatModel, Model, promptCacheEnabled } = await import("../engine/index.js");
    const { loadModelGrammars } = await import("../tool-calling/grammar/model-grammars.js");

    const reference = await resolveModelReference(options.model, { revision: options.revision });
    const model = await Model.load(reference.dir, { threads: options.threads, signal, promptCache: promptCacheEnabled() });
    let chatModel;
    try {
      chatModel = new EngineChatModel(model, { contextSize: options.contextSize });
    } catch (error) {
      model.dispose();
      throw error;
    }
    const storage = await describeWeights(reference.dir);
    const { config } = model;
    // The vocabulary is read on the first call that needs a grammar, not at load time. A server
    // that never extracts or runs the agent does not pay for it: 2.2 s for Llama-3's 128k tokens,
    // measured once on a 2-core x86_64 test machine.
    let grammars: Promise<ModelGrammars> | undefined;
    return {
      chatModel,
      info: {
        path: model.dir,
        repo: reference.repo,
        commit: reference.commit,
        config: {
          hidden_size: config.dim,
          num_hidden_layers: config.nLayers,
          num_attention_heads: config.nHeads,
          num_key_value_heads: config.nKvHeads,
          head_dim: config.headDim,
          intermediate_size: config.ffnDim,
          vocab_size: config.vocabSize,
          rope_theta: config.ropeTheta,
          max_position_embeddings: config.maxContextSize,
          tie_word_embeddings: config.tieWordEmbeddings,
        },
        quantization: storage,
        contextSize: chatModel.contextSize,
        threads: model.threads,
      },
      grammars: () => {
        grammars ??= loadModelGrammars(model.dir, config.vocabSize);
        return grammars;
      },
      dispose: () => {
        chatModel.dispose();
        model.dispose();
      },
    };
  };
}

/** Reads `torch_dtype` (or `dtype`) of config.json, e.g. "bfloat16"; "unknown" when absent. */
/**
 * Describes the stored weights from config.json: "none (bfloat16 weights)" for a float checkpoint,
 * "4-bit affine, group size 64, unquantized tensors bfloat16" for an MLX quantized one.
 */
async function describeWeights(dir: string): Promise<string> {
  const { describeQuantization, resolveModelConfig } = await import("../engine/index.js");
  let json: { torch_dtype?: unknown; dtype?: unknown };
  try {
    json = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as typeof json;
  } catch {
    return "unknown";
  }
  const dtype = json.torch_dtype ?? json.dtype;
  const storage = typeof dtype === "string" ? dtype : "unknown";
  let quantization;
  try {
    quantization = resolveModelConfig(json).quantization;
  } catch {
    // Model.load accepted the file moments ago; a file replaced since then is only described.
    return `unknown (${storage} weights)`;
  }
  return quantization === null ? `none (${storage} weights)` : `${describeQuantization(quantization)}, unquantized tensors ${storage}`;
}
