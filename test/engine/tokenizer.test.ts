import { describe, expect, it } from "vitest";
import { ChatTemplate } from "../../src/engine/chat-template.js";
import { TextTokenizer } from "../../src/engine/tokenizer.js";
import { stopTokenIds } from "../../src/engine/stop.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";

const dir = tinyCheckpoint("F32");
const tokenizer = await TextTokenizer.load(dir);
const template = await ChatTemplate.load(dir, tokenizer.config);

/** Finds the id of the byte-level token that stands for one raw byte. */
function byteTokenId(byte: number): number {
  for (let id = 0; id < 128000; id++) {
    const bytes = tokenizer.bytesOf(id);
    if (bytes.length === 1 && bytes[0] === byte) return id;
  }
  throw new Error(`no single-byte token for ${byte}`);
}

describe("tokenizer", () => {
  it("counts Nesso's 128,262 tokens", () => {
    expect(tokenizer.vocabSize).toBe(128262);
    expect(tokenizer.byteLevel).toBe(true);
  });

  it("encodes <|im_start|> as the single id 128257", () => {
    expect(tokenizer.encode("<|im_start|>")).toEqual([128257]);
    expect(tokenizer.encode("<|im_end|>")).toEqual([128256]);
    expect(tokenizer.encode("<tool_call>")).toEqual([128260]);
  });

  it("adds no BOS when encoding", () => {
    const ids = tokenizer.encode("<|begin_of_text|>ciao");
    expect(ids[0]).toBe(128000);
    expect(ids.filter((id) => id === 128000)).toHaveLength(1);
  });

  it("round-trips Italian text", () => {
    const texts = [
      "Perché la città è così bella? Perché sì!",
      "L'unità d'Italia: più di 150 anni fa… «citazione» — 🙂🇮🇹",
      "  spazi  iniziali e\tTAB\ne a capo  ",
      "Ètà, ÀÈÌÒÙ, àèìòù, ç, ß, 東京",
    ];
    for (const text of texts) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    }
  });

  it("keeps special tokens in decode unless asked", () => {
    const ids = tokenizer.encode("<|im_start|>user\nciao<|im_end|>");
    expect(tokenizer.decode(ids)).toBe("<|im_start|>user\nciao<|im_end|>");
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe("user\nciao");
  });

  it("marks ChatML tokens special and tool tags not", () => {
    expect(tokenizer.isSpecial(128256)).toBe(true);
    expect(tokenizer.isSpecial(128257)).toBe(true);
    expect(tokenizer.isSpecial(128260)).toBe(false);
    expect(tokenizer.isSpecial(9906)).toBe(false);
  });
});

describe("streaming decoder", () => {
  it("emits è whole when its bytes span tokens", () => {
    const decoder = tokenizer.createStreamDecoder();
    const [first, second] = [...new TextEncoder().encode("è")].map(byteTokenId);
    expect(decoder.push(first)).toBe("");
    expect(decoder.push(second)).toBe("è");
    expect(decoder.flush()).toBe("");
  });

  it("emits 🙂 whole when its four bytes span tokens", () => {
    const decoder = tokenizer.createStreamDecoder();
    const ids = [...new TextEncoder().encode("a🙂b")].map(byteTokenId);
    const pieces = ids.map((id) => decoder.push(id));
    expect(pieces).toEqual(["a", "", "", "", "🙂", "b"]);
  });

  it("matches decode on a tokenized Italian text", () => {
    const text = "Ecco la risposta: è già così 🙂🙂 perché sì — città! 東京";
    const ids = tokenizer.encode(text);
    const decoder = tokenizer.createStreamDecoder();
    const pieces = ids.map((id) => decoder.push(id));
    for (const piece of pieces) expect(piece).not.toContain("\uFFFD");
    expect(pieces.join("") + decoder.flush()).toBe(text);
  });

  it("turns a dangling byte into U+FFFD at flush", () => {
    const decoder = tokenizer.createStreamDecoder();
    expect(decoder.push(byteTokenId(0xc3))).toBe("");
    expect(decoder.flush()).toBe("\uFFFD");
  });

  it("emits tool tags and drops special tokens", () => {
    const decoder = tokenizer.createStreamDecoder();
    expect(decoder.push(128260)).toBe("<tool_call>");
    expect(decoder.push(128256)).toBe("");
  });
});

describe("chat template", () => {
  it("renders system and user like transformers", () => {
    const text = template.render([
      { role: "system", content: "S" },
      { role: "user", content: "U" },
    ]);
    expect(text).toBe("<|begin_of_text|>\n<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  });

  it("omits the generation prompt on request", () => {
    const text = template.render([{ role: "user", content: "U" }], { addGenerationPrompt: false });
    expect(text).toBe("<|begin_of_text|>\n<|im_start|>user\nU<|im_end|>\n");
  });

  it("encodes the rendered prompt to the expected ids", () => {
    const ids = tokenizer.encode(template.render([{ role: "system", content: "S" }, { role: "user", content: "U" }]));
    expect(ids).toEqual([128000, 198, 128257, 9125, 198, 50, 128256, 198, 128257, 882, 198, 52, 128256, 198, 128257, 78191, 198]);
  });

  it("writes tools with tojson and no ASCII escaping", () => {
    const tools = [
      { type: "function" as const, function: { name: "meteo", description: "Previsioni per città 🙂", parameters: { type: "object", properties: { città: { type: "string" } } } } },
    ];
    const text = template.render([{ role: "user", content: "Che tempo fa?" }], { tools });
    expect(text).toContain('<tools>\n{"type": "function", "function": {"name": "meteo", "description": "Previsioni per città 🙂", "parameters": {"type": "object", "properties": {"città": {"type": "string"}}}}}\n</tools>');
    expect(text.startsWith("<|begin_of_text|>\n<|im_start|>system\n# Tools\n")).toBe(true);
  });

  it("renders tool calls and merged tool responses", () => {
    const text = template.render(
      [
        { role: "user", content: "Meteo a Roma e Milano?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [
            { type: "function", function: { name: "meteo", arguments: { città: "Roma" } } },
            { type: "function", function: { name: "meteo", arguments: '{"città": "Milano"}' } },
          ],
        },
        { role: "tool", name: "meteo", content: "sole" },
        { role: "tool", name: "meteo", content: "pioggia" },
      ],
      { addGenerationPrompt: false },
    );
    expect(text).toBe(
      "<|begin_of_text|>\n<|im_start|>user\nMeteo a Roma e Milano?<|im_end|>\n" +
        '<|im_start|>assistant\n\n<tool_call>\n{"name": "meteo", "arguments": {"città": "Roma"}}\n</tool_call>\n' +
        '<tool_call>\n{"name": "meteo", "arguments": {"città": "Milano"}}\n</tool_call>\n<|im_end|>\n' +
        "<|im_start|>user\n<tool_response>\nsole\n</tool_response>\n<tool_response>\npioggia\n</tool_response>\n<|im_end|>\n",
    );
  });

  it("treats null content as empty", () => {
    const text = template.render([{ role: "user", content: null }], { addGenerationPrompt: false });
    expect(text).toBe("<|begin_of_text|>\n<|im_start|>user\n<|im_end|>\n");
  });

  it("loads the template from tokenizer_config.json", async () => {
    const { cachedCheckpoint, tinyShape } = await import("../fixtures/checkpoint.js");
    const inConfig = cachedCheckpoint({ name: "tiny-f32-template-in-config", shape: tinyShape, dtype: "F32", seed: 1, templateInTokenizerConfig: true });
    const other = await ChatTemplate.load(inConfig, (await TextTokenizer.load(inConfig)).config);
    const messages = [{ role: "system" as const, content: "Sei un assistente." }, { role: "user" as const, content: "Ciao!" }];
    expect(other.render(messages)).toBe(template.render(messages));
  });

  it("picks the tool_use template of a named list", () => {
    const named = new ChatTemplate(
      [
        { name: "default", template: "{{ bos_token }}plain" },
        { name: "tool_use", template: "{{ bos_token }}tools:{{ tools | length }}" },
      ],
      tokenizer.config,
    );
    expect(named.render([])).toBe("<|begin_of_text|>plain");
    expect(named.render([], { tools: [{ type: "function", function: { name: "f", parameters: {} } }] })).toBe("<|begin_of_text|>tools:1");
  });

  it("reports raise_exception as an invalid argument", () => {
    const strict = new ChatTemplate("{{ raise_exception('roles must alternate') }}", tokenizer.config);
    expect(() => strict.render([{ role: "user", content: "x" }])).toThrow(/roles must alternate/);
  });
});

describe("stop tokens", () => {
  it("merges <|im_end|>, config eos and Llama 3 end tokens", () => {
    const ids = stopTokenIds(tokenizer, [128001]);
    expect([...ids].sort((a, b) => a - b)).toEqual([128001, 128009, 128256]);
  });
});
