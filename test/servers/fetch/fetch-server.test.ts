// The bundled fetch server and the npm fetch-mcp server, both started by the host over stdio and
// pointed at pages served on 127.0.0.1.

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Host } from "../../../src/host/host.js";
import { fetchMcpEntry, repoRoot } from "../../host/helpers/processes.js";
import { longText, startPageServer, type PageServer } from "./page-server.js";

let pages: PageServer;
let host: Host;

beforeAll(async () => {
  pages = await startPageServer();
  host = new Host(
    {
      servers: [
        {
          name: "nesso-fetch",
          type: "stdio",
          command: process.execPath,
          args: ["--import", "tsx", "servers/fetch/main.ts", "--timeout-ms", "1000", "--max-bytes", "200000"],
          env: {},
          cwd: repoRoot,
          disabled: false,
        },
        { name: "fetch-mcp", type: "stdio", command: process.execPath, args: [fetchMcpEntry], env: {}, disabled: false },
      ],
    },
    { stdinGraceMs: 500, termGraceMs: 500 },
  );
  const statuses = await host.start();
  for (const status of statuses) expect(status.error).toBeUndefined();
});

afterAll(async () => {
  await host?.close();
  await pages?.close();
});

async function fetchText(args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
  const result = await host.callTool("fetch", args);
  const text = (result.content as Array<{ type: string; text?: string }>).map((part) => part.text ?? "").join("\n");
  return { text, isError: result.isError === true };
}

/** Returns the chunk without the "Contents of" header and the continuation hint. */
function body(text: string): string {
  const afterHeader = text.slice(text.indexOf("\n\n") + 2);
  const hint = afterHeader.lastIndexOf("\n\n[Characters ");
  return hint === -1 ? afterHeader : afterHeader.slice(0, hint);
}

describe("bundled fetch server", () => {
  it("lists one read-only fetch tool", () => {
    const fetchTool = host.listTools().find((tool) => tool.server === "nesso-fetch");

    expect(fetchTool?.name).toBe("fetch");
    expect(fetchTool?.annotations?.readOnlyHint).toBe(true);
    expect(fetchTool?.inputSchema).toMatchObject({ required: ["url"], properties: { max_length: { type: "integer" }, start_index: { type: "integer" } } });
  });

  it("converts an Italian page to markdown", async () => {
    const { text, isError } = await fetchText({ url: `${pages.url}/pagina.html`, max_length: 100_000 });

    expect(isError).toBe(false);
    expect(text).toContain(`Contents of ${pages.url}/pagina.html (text/html, converted to markdown):`);
    expect(text).toContain("# Perché il caffè napoletano è speciale ☕");
    expect(text).toContain("A **Napoli** l'*espresso* si beve al banco, in piedi. È un rito 😀 che dura pochi secondi.");
    expect(text).toContain(`[la storia della moka](${pages.url}/storia?anno=1901&citt%C3%A0=napoli)`);
    expect(text).toContain("## Cosa ordinare");
    expect(text).toContain("- Caffè ristretto\n- Cappuccino (solo la mattina!)\n  - con cacao\n  - senza schiuma");
    expect(text).toContain("| Bevanda | Prezzo |\n| --- | --- |\n| Espresso | 1,20 € |\n| Cornetto | 1,50 € |");
    expect(text).toContain(`![Una tazzina](${pages.url}/foto/tazzina.jpg)`);
    expect(text).toContain('```bash\necho "caffè"\n```');
    expect(text).toContain("Grazie e arrivederci 👋");
    expect(text).not.toContain("questo non deve comparire");
    expect(text).not.toContain("font-family");
    expect(text).not.toContain("Bar Sport");
  });

  it("reads a long text in chunks with start_index", async () => {
    const characters = Array.from(longText);
    const chunks: string[] = [];
    let start = 0;
    for (let call = 0; call < 100 && start < characters.length; call++) {
      const { text, isError } = await fetchText({ url: `${pages.url}/lungo.txt`, max_length: 997, start_index: start });
      expect(isError).toBe(false);
      chunks.push(body(text));
      const next = /start_index=(\d+)/.exec(text);
      if (next === null) break;
      expect(Number(next[1])).toBe(start + 997);
      start = Number(next[1]);
    }

    expect(chunks.length).toBe(Math.ceil(characters.length / 997));
    expect(chunks.join("")).toBe(longText);
    for (const chunk of chunks) expect(chunk).not.toMatch(/[\uD800-\uDBFF]$|^[\uDC00-\uDFFF]/);
  });

  it("rejects a start_index past the end", async () => {
    const { text, isError } = await fetchText({ url: `${pages.url}/lungo.txt`, start_index: 1_000_000 });

    expect(isError).toBe(true);
    expect(text).toMatch(/start_index 1000000 is past the end of the content, which has \d+ characters/);
  });

  it("reports HTTP errors", async () => {
    const { text, isError } = await fetchText({ url: `${pages.url}/mancante` });

    expect(isError).toBe(true);
    expect(text).toBe(`fetching ${pages.url}/mancante failed: the server responded with HTTP 404 Not Found`);
  });

  it("rejects binary content types", async () => {
    const image = await fetchText({ url: `${pages.url}/immagine.png` });
    const octets = await fetchText({ url: `${pages.url}/dati.bin` });
    const sniffed = await fetchText({ url: `${pages.url}/senza-tipo-binario` });

    expect(image.isError).toBe(true);
    expect(image.text).toContain("returned binary content (image/png, 16 bytes), which cannot be shown as text");
    expect(octets.isError).toBe(true);
    expect(octets.text).toContain("binary content (application/octet-stream)");
    expect(sniffed.isError).toBe(true);
    expect(sniffed.text).toContain("binary content (no Content-Type, 5 bytes read)");
  });

  it("rejects URLs that are not http", async () => {
    const file = await fetchText({ url: "file:///etc/passwd" });
    const ftp = await fetchText({ url: "ftp://example.com/file" });
    const invalid = await fetchText({ url: "not a url" });

    expect(file.isError).toBe(true);
    expect(file.text).toBe('the fetch tool only reads http and https URLs; "file:" in file:///etc/passwd is not allowed');
    expect(file.text).not.toContain("root:");
    expect(ftp.isError).toBe(true);
    expect(ftp.text).toContain('"ftp:"');
    expect(invalid.isError).toBe(true);
    expect(invalid.text).toContain('"not a url" is not a valid URL');
  });

  it("times out a slow server", async () => {
    const started = Date.now();
    const { text, isError } = await fetchText({ url: `${pages.url}/lento` });

    expect(isError).toBe(true);
    expect(text).toBe(`fetching ${pages.url}/lento timed out after 1000 ms`);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("stops reading at the size limit", async () => {
    const { text, isError } = await fetchText({ url: `${pages.url}/grande.txt`, max_length: 10 });

    expect(isError).toBe(false);
    expect(text).toContain("[Characters 0 to 10 of 200000. Call fetch with start_index=10 to read more.]");
    expect(text).toContain("[The page is larger than 200000 bytes; only the first 200000 bytes were read.]");
  });

  it("decodes legacy charsets", async () => {
    const header = await fetchText({ url: `${pages.url}/latin1.html` });
    const meta = await fetchText({ url: `${pages.url}/meta-latin1.html` });

    expect(body(header.text)).toBe("Perché la città è così bella");
    expect(body(meta.text)).toBe("Più caffè");
  });

  it("returns text, JSON and raw HTML as they are", async () => {
    const json = await fetchText({ url: `${pages.url}/dati.json` });
    const untyped = await fetchText({ url: `${pages.url}/senza-tipo` });
    const raw = await fetchText({ url: `${pages.url}/pagina.html`, raw: true, max_length: 100_000 });

    expect(body(json.text)).toBe('{"città":"Roma","emoji":"🍝"}');
    expect(body(untyped.text)).toBe("Testo semplice senza Content-Type: però funziona 👍");
    expect(raw.text).toContain("(text/html):");
    expect(body(raw.text)).toContain("<strong>Napoli</strong>");
  });

  it("follows redirects", async () => {
    const { text } = await fetchText({ url: `${pages.url}/redirect`, max_length: 60 });

    expect(text).toContain(`Contents of ${pages.url}/pagina.html`);
  });

  it("rejects invalid arguments", async () => {
    const zero = await fetchText({ url: `${pages.url}/lungo.txt`, max_length: 0 });
    const negative = await fetchText({ url: `${pages.url}/lungo.txt`, start_index: -1 });
    const extra = await fetchText({ url: `${pages.url}/lungo.txt`, maxLength: 5 });

    expect(zero.isError).toBe(true);
    expect(zero.text).toBe('"max_length" must be an integer from 1 to 1000000, got 0');
    expect(negative.text).toBe('"start_index" must be an integer of 0 or more, got -1');
    expect(extra.text).toContain("unknown argument(s) maxLength");
  });
});

describe("fetch-mcp server", () => {
  async function fetchUrl(args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
    const result = await host.callTool("fetch_url", args);
    const text = (result.content as Array<{ type: string; text?: string }>).map((part) => part.text ?? "").join("\n");
    return { text, isError: result.isError === true };
  }

  it("converts the Italian page to markdown", async () => {
    const { text, isError } = await fetchUrl({ url: `${pages.url}/pagina.html`, max_length: 100_000 });

    expect(isError).toBe(false);
    expect(text).toContain("Perché il caffè napoletano è speciale ☕");
    expect(text).toContain("**Napoli**");
    expect(text).toContain("È un rito 😀");
  });

  it("chunks with max_length and start_index", async () => {
    const first = await fetchUrl({ url: `${pages.url}/lungo.txt`, max_length: 20, start_index: 0 });
    const second = await fetchUrl({ url: `${pages.url}/lungo.txt`, max_length: 20, start_index: 20 });

    expect(first.text).toContain(`Content: ${longText.slice(0, 20)}`);
    expect(second.text).toContain(`Content: ${longText.slice(20, 40)}`);
    expect(second.text).toContain(`Remaining content length: ${longText.length - 40}`);
  });

  it("reports a 404 as an error", async () => {
    const { text, isError } = await fetchUrl({ url: `${pages.url}/mancante` });

    expect(isError).toBe(true);
    expect(text).toContain("404");
  });

  it("does not return binary content as text", async () => {
    const result = await host.callTool("fetch_url", { url: `${pages.url}/dati.bin` });

    expect(JSON.stringify(result.content)).toContain("Unsupported mime type: application/octet-stream");
  });
});
