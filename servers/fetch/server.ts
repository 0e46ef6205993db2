// The MCP server of the bundled fetch tool: one tool, `fetch`, that reads a web page as markdown
// (or raw text) in chunks a small model can take in one at a time.

import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from "@modelcontextprotocol/sdk/types.js";

import { sliceCodePoints } from "./chunk.js";
import { FetchError, fetchDocument, type FetchLimits } from "./fetcher.js";
import { htmlToMarkdown } from "./html-to-markdown.js";

export interface FetchServerOptions extends FetchLimits {
  /** Characters returned per call when the caller gives no `max_length`. */
  defaultMaxLength: number;
}

export const defaultFetchServerOptions: FetchServerOptions = {
  maxBytes: 5 * 1024 * 1024,
  timeoutMs: 30_000,
  userAgent: "nesso-mcp-fetch/0.1.0 (Model Context Protocol fetch tool)",
  defaultMaxLength: 5000,
};

/** Largest `max_length` accepted, in characters. */
const maxLengthLimit = 1_000_000;

export const fetchTool: Tool = {
  name: "fetch",
  title: "Fetch a web page",
  description:
    "Fetches a URL from the internet and returns its content as markdown (HTML pages) or as text. " +
    "Long pages come in chunks: call again with start_index to read further.",
  inputSchema: {
    type: "object",
    properties: {
      url: { type: "string", format: "uri", description: "The http or https URL to fetch" },
      max_length: {
        type: "integer",
        minimum: 1,
        maximum: maxLengthLimit,
        default: defaultFetchServerOptions.defaultMaxLength,
        description: "Maximum number of characters to return",
      },
      start_index: {
        type: "integer",
        minimum: 0,
        default: 0,
        description: "Character index to start from; use the value given at the end of the previous chunk",
      },
      raw: { type: "boolean", default: false, description: "Return the page as it is, without converting HTML to markdown" },
    },
    required: ["url"],
    additionalProperties: false,
  },
  annotations: { title: "Fetch a web page", readOnlyHint: true, openWorldHint: true },
};

interface FetchArguments {
  url: string;
  maxLength: number;
  startIndex: number;
  raw: boolean;
}

/** Creates the server; connect it to a transport to serve. */
export function createFetchServer(options: Partial<FetchServerOptions> = {}): Server {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const settings: FetchServerOptions = { ...defaultFetchServerOptions, ...given };
  const server = new Server({ name: "nesso-mcp-fetch", version: "0.1.0" }, { capabilities: { tools: {} } });

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [fetchTool] }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    if (request.params.name !== fetchTool.name) {
      return errorResult(`unknown tool "${request.params.name}"; this server has one tool, "fetch"`);
    }
    try {
      const args = parseArguments(request.params.arguments ?? {}, settings.defaultMaxLength);
      return await runFetch(args, settings, extra.signal);
    } catch (error) {
      if (error instanceof FetchError) return errorResult(error.message);
      throw error;
    }
  });
  return server;
}

async function runFetch(args: FetchArguments, settings: FetchServerOptions, signal: AbortSignal): Promise<CallToolResult> {
  const document = await fetchDocument(args.url, settings, signal);
  const converted = document.kind === "html" && !args.raw;
  const content = converted ? htmlToMarkdown(document.text, { baseUrl: document.url }) : document.text;

  const chunk = sliceCodePoints(content, args.startIndex, args.maxLength);
  if (chunk.total > 0 && args.startIndex >= chunk.total) {
    return errorResult(`start_index ${args.startIndex} is past the end of the content, which has ${chunk.total} characters`);
  }

  const described = document.mediaType === "" ? "no content type" : document.mediaType;
  const lines = [`Contents of ${document.url} (${described}${converted ? ", converted to markdown" : ""}):`, "", chunk.text];
  if (chunk.end < chunk.total) {
    lines.push("", `[Characters ${chunk.start} to ${chunk.end} of ${chunk.total}. Call fetch with start_index=${chunk.end} to read more.]`);
  }
  if (document.truncated) {
    lines.push("", `[The page is larger than ${settings.maxBytes} bytes; only the first ${settings.maxBytes} bytes were read.]`);
  }
  return { content: [{ type: "text", text: lines.join("\n") }] };
}

/** Validates the tool arguments; problems come back to the caller as a FetchError it can fix. */
function parseArguments(args: Record<string, unknown>, defaultMaxLength: number): FetchArguments {
  const known = new Set(["url", "max_length", "start_index", "raw"]);
  const unknown = Object.keys(args).filter((key) => !known.has(key));
  if (unknown.length > 0) throw new FetchError(`unknown argument(s) ${unknown.join(", ")}; fetch accepts url, max_length, start_index and raw`);

  const { url, max_length: maxLength = defaultMaxLength, start_index: startIndex = 0, raw = false } = args;
  if (typeof url !== "string" || url.trim() === "") throw new FetchError(`"url" must be a non-empty string, got ${JSON.stringify(url)}`);
  if (!Number.isInteger(maxLength) || (maxLength as number) < 1 || (maxLength as number) > maxLengthLimit) {
    throw new FetchError(`"max_length" must be an integer from 1 to ${maxLengthLimit}, got ${JSON.stringify(maxLength)}`);
  }
  if (!Number.isInteger(startIndex) || (startIndex as number) < 0) {
    throw new FetchError(`"start_index" must be an integer of 0 or more, got ${JSON.stringify(startIndex)}`);
  }
  if (typeof raw !== "boolean") throw new FetchError(`"raw" must be true or false, got ${JSON.stringify(raw)}`);
  return { url: url.trim(), maxLength: maxLength as number, startIndex: startIndex as number, raw };
}

function errorResult(message: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text: message }] };
}
