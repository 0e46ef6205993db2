import { describe, expect, it } from "vitest";

import { capText, formatToolResult, toolResultToText } from "../../src/agent/tool-result.js";
import { loadNessoTokenizer } from "./scripted-model.js";

const tokenizer = loadNessoTokenizer();
const countTokens = (text: string) => tokenizer.encode(text, { add_special_tokens: false }).ids.length;

describe("toolResultToText", () => {
  it("joins text parts", () => {
    const text = toolResultToText({ content: [{ type: "text", text: "prima riga è" }, { type: "text", text: "seconda 😀" }] });
    expect(text).toBe("prima riga è\nseconda 😀");
  });

  it("summarises images and audio", () => {
    const png = Buffer.alloc(1234, 7).toString("base64");
    const text = toolResultToText({
      content: [
        { type: "image", data: png, mimeType: "image/png" },
        { type: "audio", data: Buffer.alloc(10).toString("base64"), mimeType: "audio/wav" },
      ],
    });
    expect(text).toBe("[image: image/png, 1234 bytes]\n[audio: audio/wav, 10 bytes]");
  });

  it("writes embedded resources and links", () => {
    const text = toolResultToText({
      content: [
        { type: "resource", resource: { uri: "file:///tmp/nota.txt", mimeType: "text/plain", text: "caffè" } },
        { type: "resource", resource: { uri: "file:///tmp/a.bin", blob: Buffer.alloc(5).toString("base64") } },
        { type: "resource_link", uri: "file:///tmp/b.md", name: "b.md" },
      ],
    });
    expect(text).toBe(
      "[resource: file:///tmp/nota.txt, text/plain]\ncaffè\n[resource: file:///tmp/a.bin, 5 bytes]\n[resource link: file:///tmp/b.md (b.md)]",
    );
  });

  it("uses structuredContent only without text", () => {
    expect(toolResultToText({ content: [], structuredContent: { somma: 5, città: "Roma" } })).toBe('{"somma":5,"città":"Roma"}');
    expect(toolResultToText({ content: [{ type: "text", text: "5" }], structuredContent: { sum: 5 } })).toBe("5");
  });

  it("names an empty result", () => {
    expect(toolResultToText({ content: [] })).toBe("(the tool returned no content)");
  });
});

describe("capText", () => {
  it("keeps text within the cap unchanged", () => {
    const capped = capText("breve testo è", 100, countTokens);
    expect(capped).toEqual({ text: "breve testo è", tokens: countTokens("breve testo è"), truncated: false, cutCharacters: 0 });
  });

  it("keeps head and tail with a marker", () => {
    const lines = Array.from({ length: 400 }, (_, i) => `riga ${i}: perché sì 😀`);
    const text = lines.join("\n");

    const capped = capText(text, 150, countTokens);

    expect(capped.truncated).toBe(true);
    expect(capped.tokens).toBeLessThanOrEqual(150);
    expect(capped.tokens).toBe(countTokens(capped.text));
    expect(capped.text.startsWith("riga 0: perché sì 😀\nriga 1:")).toBe(true);
    expect(capped.text.endsWith("riga 399: perché sì 😀")).toBe(true);
    const marker = /\n\[… (\d+) of (\d+) characters \(about (\d+) tokens\) were cut from the middle of this result …\]\n/.exec(capped.text);
    expect(marker).not.toBeNull();
    expect(Number(marker![1])).toBe(capped.cutCharacters);
    expect(Number(marker![2])).toBe(text.length);
    expect(capped.text.length - marker![0].length + capped.cutCharacters).toBe(text.length);
  });

  it("never splits a surrogate pair", () => {
    const text = "😀".repeat(3000);
    const capped = capText(text, 80, countTokens);
    expect(capped.truncated).toBe(true);
    expect(capped.text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });

  it("formats and caps a result", () => {
    const formatted = formatToolResult({ content: [{ type: "text", text: "x ".repeat(5000) }] }, 100, countTokens);
    expect(countTokens(formatted)).toBeLessThanOrEqual(100);
    expect(formatted).toContain("were cut from the middle of this result");
  });
});
