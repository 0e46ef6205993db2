// HTML to markdown for a language model to read. Headings, paragraphs, lists, links, images,
// emphasis, code, quotes and tables are kept, while scripts, styles, form controls and hidden
// elements are dropped. When the page has a <main> element, only its content is converted.

import { parseHtml, type ElementNode, type HtmlNode } from "./html-parser.js";

export interface MarkdownOptions {
  /** URL of the page, used to make relative links and image sources absolute. */
  baseUrl?: string;
}

// Form controls are skipped but <form> itself is not: some sites wrap the whole page in one.
const skippedElements = new Set([
  "head", "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
  "input", "select", "option", "textarea", "button", "dialog", "map", "audio", "video", "source",
]);

const blockElements = new Set([
  "address", "article", "aside", "body", "center", "details", "div", "dl", "fieldset", "figcaption", "figure",
  "footer", "form", "header", "hgroup", "html", "main", "nav", "p", "section", "summary", "#document", "caption",
]);

interface RenderContext {
  baseUrl?: URL;
}

/** Converts an HTML document or fragment to markdown. Never throws. */
export function htmlToMarkdown(html: string, options: MarkdownOptions = {}): string {
  const document = parseHtml(html);
  const context: RenderContext = { baseUrl: parseUrl(options.baseUrl) };

  const base = findFirst(document, "base")?.attributes.get("href");
  if (base !== undefined) context.baseUrl = parseUrl(base, context.baseUrl) ?? context.baseUrl;

  const content = findFirst(document, "main") ?? findFirst(document, "body") ?? document;
  let markdown = renderBlocks(content, context, "\n\n");

  const title = findFirst(document, "title");
  const titleText = title === undefined ? "" : collapseWhitespace(textContent(title)).trim();
  if (titleText !== "" && !markdown.startsWith("# ")) markdown = `# ${titleText}\n\n${markdown}`;
  return markdown.replace(/\n{3,}/g, "\n\n").trim();
}

/** Accumulates block-level output; inline content collects in `inline` until a block boundary. */
class BlockWriter {
  readonly blocks: string[] = [];
  inline = "";

  addInline(text: string): void {
    this.inline += text;
  }

  addBlock(block: string): void {
    this.flush();
    if (block.trim() !== "") this.blocks.push(block);
  }

  flush(): void {
    const lines = this.inline.split("\n").map((line) => line.replace(/[ \t]+/g, " ").trim());
    const text = lines.join("\n").replace(/^\n+|\n+$/g, "");
    if (text !== "") this.blocks.push(text);
    this.inline = "";
  }

  result(separator: string): string {
    this.flush();
    return this.blocks.join(separator);
  }
}

/** Renders the children of `element` as a sequence of blocks joined by `separator`. */
function renderBlocks(element: ElementNode, context: RenderContext, separator: string): string {
  const writer = new BlockWriter();
  renderChildren(element, writer, context);
  return writer.result(separator);
}

function renderChildren(element: ElementNode, writer: BlockWriter, context: RenderContext): void {
  for (const child of element.children) {
    if (child.type === "text") {
      writer.addInline(collapseWhitespace(child.text));
      continue;
    }
    renderElement(child, writer, context);
  }
}

function renderElement(element: ElementNode, writer: BlockWriter, context: RenderContext): void {
  const { name } = element;
  if (skippedElements.has(name) || name === "title" || element.attributes.has("hidden")) return;

  const heading = /^h([1-6])$/.exec(name);
  if (heading !== null) {
    const text = renderInline(element, context).trim();
    if (text !== "") writer.addBlock(`${"#".repeat(Number(heading[1]))} ${text}`);
    return;
  }

  switch (name) {
    case "br":
      writer.addInline("\n");
      return;
    case "hr":
      writer.addBlock("---");
      return;
    case "ul":
    case "ol":
    case "menu":
      writer.addBlock(renderList(element, context));
      return;
    case "blockquote": {
      const inner = renderBlocks(element, context, "\n\n");
      writer.addBlock(inner.split("\n").map((line) => (line === "" ? ">" : `> ${line}`)).join("\n"));
      return;
    }
    case "pre":
      writer.addBlock(renderPre(element));
      return;
    case "table":
      writer.addBlock(renderTable(element, context));
      return;
    case "dt":
      writer.addBlock(`**${renderInline(element, context).trim()}**`);
      return;
    case "dd":
      writer.addBlock(renderBlocks(element, context, "\n").split("\n").map((line) => `  ${line}`).join("\n"));
      return;
  }

  if (blockElements.has(name)) {
    writer.flush();
    renderChildren(element, writer, context);
    writer.flush();
    return;
  }
  writer.addInline(renderInlineElement(element, context));
}

/** Renders inline content; block elements inside inline ones are flattened to text. */
function renderInline(element: ElementNode, context: RenderContext): string {
  let text = "";
  for (const child of element.children) {
    if (child.type === "text") text += collapseWhitespace(child.text);
    else text += renderInlineElement(child, context);
  }
  return text;
}

function renderInlineElement(element: ElementNode, context: RenderContext): string {
  const { name } = element;
  if (skippedElements.has(name) || element.attributes.has("hidden")) return "";

  switch (name) {
    case "br":
      return "\n";
    case "img": {
      const alt = collapseWhitespace(element.attributes.get("alt") ?? "").trim();
      const source = resolveUrl(element.attributes.get("src"), context);
      if (source === undefined) return alt === "" ? "" : `[image: ${alt}]`;
      return `![${escapeBrackets(alt)}](${source})`;
    }
    case "a": {
      const text = renderInline(element, context).replace(/\s+/g, " ").trim();
      const href = element.attributes.get("href");
      if (href === undefined || href.startsWith("#")) return text;
      const target = resolveUrl(href, context);
      if (target === undefined) return text;
      return `[${escapeBrackets(text === "" ? target : text)}](${target})`;
    }
    case "strong":
    case "b":
      return wrapInline(renderInline(element, context), "**");
    case "em":
    case "i":
    case "cite":
    case "dfn":
      return wrapInline(renderInline(element, context), "*");
    case "del":
    case "s":
    case "strike":
      return wrapInline(renderInline(element, context), "~~");
    case "code":
    case "kbd":
    case "samp":
    case "tt":
      return codeSpan(collapseWhitespace(textContent(element)));
    case "q":
      return `"${renderInline(element, context)}"`;
    case "sup":
      return `^${renderInline(element, context)}`;
  }
  if (blockElements.has(name) || name === "li" || name === "tr" || /^h[1-6]$/.test(name)) {
    return ` ${renderInline(element, context)} `;
  }
  return renderInline(element, context);
}

function renderList(list: ElementNode, context: RenderContext): string {
  const ordered = list.name === "ol";
  const start = Number.parseInt(list.attributes.get("start") ?? "1", 10);
  let number = Number.isFinite(start) ? start : 1;
  const items: string[] = [];

  for (const child of list.children) {
    if (child.type === "text") {
      if (child.text.trim() !== "") items.push(`- ${collapseWhitespace(child.text).trim()}`);
      continue;
    }
    if (skippedElements.has(child.name)) continue;
    const body = child.name === "li" ? renderBlocks(child, context, "\n") : renderBlocks(wrap(child), context, "\n");
    if (body === "") continue;
    const marker = ordered ? `${number++}. ` : "- ";
    const indent = " ".repeat(marker.length);
    const lines = body.split("\n");
    items.push([marker + lines[0], ...lines.slice(1).map((line) => (line === "" ? "" : indent + line))].join("\n"));
  }
  return items.join("\n");
}

function renderPre(pre: ElementNode): string {
  const code = pre.children.find((child): child is ElementNode => child.type === "element" && child.name === "code");
  const className = `${code?.attributes.get("class") ?? ""} ${pre.attributes.get("class") ?? ""}`;
  const language = /(?:^|\s)(?:language|lang)-([\w+#.-]+)/.exec(className)?.[1] ?? "";
  const text = textContent(pre).replace(/^\n/, "").replace(/\s+$/, "");
  const longestRun = Math.max(2, ...[...text.matchAll(/`+/g)].map((match) => match[0].length));
  const fence = "`".repeat(longestRun + 1);
  return `${fence}${language}\n${text}\n${fence}`;
}

function renderTable(table: ElementNode, context: RenderContext): string {
  const rows: string[][] = [];
  const caption = findFirst(table, "caption");
  collectRows(table, rows, context);
  if (rows.length === 0) return "";

  const width = Math.max(...rows.map((row) => row.length));
  const lines = rows.map((row) => `| ${[...row, ...Array<string>(width - row.length).fill("")].join(" | ")} |`);
  lines.splice(1, 0, `| ${Array<string>(width).fill("---").join(" | ")} |`);
  const captionText = caption === undefined ? "" : renderInline(caption, context).trim();
  return (captionText === "" ? "" : `${captionText}\n\n`) + lines.join("\n");
}

function collectRows(element: ElementNode, rows: string[][], context: RenderContext): void {
  for (const child of element.children) {
    if (child.type !== "element" || child.name === "table") continue; // nested tables are not flattened into this one
    if (child.name === "tr") {
      const cells: string[] = [];
      for (const cell of child.children) {
        if (cell.type !== "element" || (cell.name !== "td" && cell.name !== "th")) continue;
        const text = renderInline(cell, context).replace(/\s+/g, " ").trim().replace(/\|/g, "\\|");
        cells.push(text);
        const span = Math.min(Number.parseInt(cell.attributes.get("colspan") ?? "1", 10) || 1, 50);
        for (let extra = 1; extra < span; extra++) cells.push("");
      }
      if (cells.length > 0) rows.push(cells);
    } else if (child.name === "thead" || child.name === "tbody" || child.name === "tfoot") {
      collectRows(child, rows, context);
    }
  }
}

function textContent(node: HtmlNode): string {
  if (node.type === "text") return node.text;
  return node.children.map(textContent).join("");
}

function findFirst(element: ElementNode, name: string): ElementNode | undefined {
  for (const child of element.children) {
    if (child.type !== "element") continue;
    if (child.name === name) return child;
    const found = findFirst(child, name);
    if (found !== undefined) return found;
  }
  return undefined;
}

function wrap(element: ElementNode): ElementNode {
  return { type: "element", name: "#document", attributes: new Map(), children: [element] };
}

function collapseWhitespace(text: string): string {
  return text.replace(/[ \t\n\r\f\u00a0]+/g, " ");
}

/** Wraps text in a marker and keeps surrounding spaces outside it, because `** x**` is not bold. */
function wrapInline(text: string, marker: string): string {
  const trimmed = text.trim();
  if (trimmed === "") return text;
  const leading = /^\s/.test(text) ? " " : "";
  const trailing = /\s$/.test(text) ? " " : "";
  return `${leading}${marker}${trimmed}${marker}${trailing}`;
}

function codeSpan(text: string): string {
  if (text.trim() === "") return text;
  const longestRun = Math.max(0, ...[...text.matchAll(/`+/g)].map((match) => match[0].length));
  const fence = "`".repeat(longestRun + 1);
  const padding = longestRun > 0 ? " " : "";
  return `${fence}${padding}${text}${padding}${fence}`;
}

function escapeBrackets(text: string): string {
  return text.replace(/[[\]]/g, "\\$&");
}

/** Resolves a link against the page URL; only http, https and mailto targets are kept. */
function resolveUrl(href: string | undefined, context: RenderContext): string | undefined {
  if (href === undefined || href.trim() === "") return undefined;
  const url = parseUrl(href.trim(), context.baseUrl);
  if (url === undefined) return undefined;
  if (url.protocol !== "http:" && url.protocol !== "https:" && url.protocol !== "mailto:") return undefined;
  // Parentheses and spaces would end the markdown link target early.
  return url.href.replace(/[()\s]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

function parseUrl(text: string | undefined, base?: URL): URL | undefined {
  if (text === undefined) return undefined;
  try {
    return new URL(text, base);
  } catch {
    return undefined;
  }
}
