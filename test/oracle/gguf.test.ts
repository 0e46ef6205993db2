// The GGUF writer on its own: header fields read back by node-llama-cpp's GGUF reader, the Q/K row
// permutation, and llama.cpp's tokenizer agreeing with ours on the written vocabulary.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { TextTokenizer } from "../../src/engine/tokenizer.js";
import { tinyCheckpoint, tinyShape, writeCheckpoint } from "../fixtures/checkpoint.js";
import { makeTempDir } from "../engine/helpers.js";
import { ggufTensorName, permuteRotaryRows, writeGguf } from "./gguf.js";
import { disposeCpuLlama, getCpuLlama } from "./llama-cpp.js";

const temp = makeTempDir("nesso-gguf-");
afterAll(async () => {
  await disposeCpuLlama();
  temp.remove();
});

const dir = tinyCheckpoint("F32");
const ggufPath = await writeGguf(dir, join(temp.dir, "tiny.gguf"), { contextLength: 512 });
/** Skipping the three vocabulary arrays makes reading the header about ten times faster. */
const vocabularyKeys = ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"];
const tensorInfo = (path: string) => readGgufFileInfo(path, { logWarnings: false, ignoreKeys: vocabularyKeys }).then((info) => info.fullTensorInfo!);

describe("GGUF writer", () => {
  it("writes the llama metadata", async () => {
    const info = await readGgufFileInfo(ggufPath, { logWarnings: false });
    expect(info.version).toBe(3);
    const metadata = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(metadata.general.architecture).toBe("llama");
    const llama = metadata.llama as Record<string, unknown>;
    expect(llama.context_length).toBe(512);
    expect(llama.embedding_length).toBe(tinyShape.dim);
    expect(llama.block_count).toBe(tinyShape.nLayers);
    expect(llama.feed_forward_length).toBe(tinyShape.ffnDim);
    expect((llama.attention as Record<string, unknown>).head_count).toBe(tinyShape.nHeads);
    expect((llama.attention as Record<string, unknown>).head_count_kv).toBe(tinyShape.nKvHeads);
    expect((llama.rope as Record<string, unknown>).dimension_count).toBe(tinyShape.headDim);
    const tokenizer = (metadata.tokenizer as Record<string, Record<string, unknown>>).ggml;
    expect(tokenizer.model).toBe("gpt2");
    expect(tokenizer.pre).toBe("llama-bpe");
    expect((tokenizer.tokens as string[]).length).toBe(128262);
    expect((tokenizer.tokens as string[])[128257]).toBe("<|im_start|>");
    expect((tokenizer.token_type as number[])[128257]).toBe(3);
    expect((tokenizer.token_type as number[])[128260]).toBe(4);
    expect((tokenizer.token_type as number[])[9906]).toBe(1);
    expect(tokenizer.bos_token_id).toBe(128000);
    expect(tokenizer.eos_token_id).toBe(128256);
  });

  it("writes tensor dims innermost-first at aligned offsets", async () => {
    const info = await tensorInfo(ggufPath);
    const tensors = new Map(info.map((tensor) => [tensor.name, tensor]));
    expect(tensors.get("token_embd.weight")!.dimensions.map(Number)).toEqual([tinyShape.dim, tinyShape.vocabSize]);
    expect(tensors.get("blk.1.attn_k.weight")!.dimensions.map(Number)).toEqual([tinyShape.dim, tinyShape.nKvHeads * tinyShape.headDim]);
    expect(tensors.get("blk.0.ffn_down.weight")!.dimensions.map(Number)).toEqual([tinyShape.ffnDim, tinyShape.dim]);
    expect(tensors.has("output.weight")).toBe(false);
    for (const tensor of info) expect(Number(tensor.fileOffset) % 32).toBe(0);
    expect(info).toHaveLength(2 + tinyShape.nLayers * 9);
  });

  it("permutes q rows into adjacent RoPE pairs", () => {
    // Two heads of headDim 4, one byte per row: rows are [h0: 0 1 2 3][h1: 4 5 6 7].
    const rows = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]);
    // GGUF row 2j = row j, row 2j+1 = row j + headDim/2, per head.
    expect([...permuteRotaryRows(rows, 2, 4, 1)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it("permutes the q weight bytes in the file", async () => {
    const q = (await tensorInfo(ggufPath)).find((tensor) => tensor.name === "blk.0.attn_q.weight")!;
    const file = readFileSync(ggufPath);
    const rowBytes = tinyShape.dim * 4;
    const ggufRow1 = file.subarray(Number(q.fileOffset) + rowBytes, Number(q.fileOffset) + 2 * rowBytes);

    const source = readFileSync(join(dir, "model.safetensors"));
    const headerLength = Number(source.readBigUInt64LE(0));
    const header = JSON.parse(source.subarray(8, 8 + headerLength).toString("utf8"));
    const start = 8 + headerLength + header["model.layers.0.self_attn.q_proj.weight"].data_offsets[0];
    // GGUF row 1 is checkpoint row headDim/2 of head 0.
    const checkpointRow = source.subarray(start + (tinyShape.headDim / 2) * rowBytes, start + (tinyShape.headDim / 2 + 1) * rowBytes);
    expect(ggufRow1.equals(checkpointRow)).toBe(true);
  });

  it("maps checkpoint names to GGUF names", () => {
    expect(ggufTensorName("model.layers.12.self_attn.o_proj.weight")).toBe("blk.12.attn_output.weight");
    expect(ggufTensorName("model.layers.0.post_attention_layernorm.weight")).toBe("blk.0.ffn_norm.weight");
    expect(ggufTensorName("lm_head.weight")).toBe("output.weight");
    expect(() => ggufTensorName("model.layers.0.unknown.weight")).toThrow(/no GGUF name/);
  });

  it("writes lm_head as output.weight when untied", async () => {
    const untied = writeCheckpoint({ dir: join(temp.dir, "untied"), shape: tinyShape, untied: true, seed: 3 });
    const path = await writeGguf(untied, join(temp.dir, "untied.gguf"));
    expect((await tensorInfo(path)).some((tensor) => tensor.name === "output.weight")).toBe(true);
  });

  it("tokenizes like our tokenizer in llama.cpp", async () => {
    const ours = await TextTokenizer.load(dir);
    const model = await (await getCpuLlama()).loadModel({ modelPath: ggufPath });
    try {
      const texts = [
        "<|im_start|>user\nCiao! Com'è il tempo a Città di Castello? 🙂<|im_end|>\n<|im_start|>assistant\n",
        "Perché l'unità d'Italia è del 1861... ÀÈÌÒÙ àèìòù «virgolette» 12345 東京",
        "<tool_call>\n{\"name\": \"meteo\", \"arguments\": {\"città\": \"Roma\"}}\n</tool_call>",
      ];
      for (const text of texts) {
        expect(model.tokenize(text, true).map(Number)).toEqual(ours.encode(text));
      }
    } finally {
      await model.dispose();
    }
  });
});
