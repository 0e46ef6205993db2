// A small, forgiving HTML parser: tokens to a tree, with the implied end tags that real pages rely
// on (unclosed <p>, <li>, <td>, <tr>, <option>). Malformed markup becomes text or is dropped
// instead of raising an error. Nesting deeper than `maxDepth` is flattened, so that the recursive
// renderer cannot overflow the stack.

import { decodeEntities } from "./html-entities.js";

export interface TextNode {
  type: "text";
  text: string;
}

export interface ElementNode {
  type: "element";
  /** Lower-case tag name; the root is "#document". */
  name: string;
  attributes: Map<string, string>;
  children: HtmlNode[];
}

export type HtmlNode = TextNode | ElementNode;

const maxDepth = 256;

const voidElements = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]);

/** Elements whose content is not markup; it is kept as one text node (or skipped by the renderer). */
const rawTextElements = new Set(["script", "style", "textarea", "title", "xmp", "noscript", "template", "plaintext"]);

/** Elements that end an open <p>. */
const closesParagraph = new Set([
  "address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset", "figcaption", "figure", "footer", "form",
  "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "table", "ul",
]);

/** Open elements that stop the search for a <p> to close (the paragraph is outside them). */
const paragraphBoundary = ["button", "table", "li", "td", "th", "blockquote", "div", "section", "article"];

/** For an element that ends an open sibling of the same kind: which open elements end it, and which stop the search. */
const impliedEnds: Record<string, { closes: string[]; boundary: string[] }> = {
  li: { closes: ["li"], boundary: ["ul", "ol", "menu"] },
  dt: { closes: ["dt", "dd"], boundary: ["dl"] },
  dd: { closes: ["dt", "dd"], boundary: ["dl"] },
  tr: { closes: ["tr", "td", "th"], boundary: ["table", "thead", "tbody", "tfoot"] },
  td: { closes: ["td", "th"], boundary: ["tr", "table"] },
  th: { closes: ["td", "th"], boundary: ["tr", "table"] },
  thead: { closes: ["thead", "tbody", "tfoot", "tr", "td", "th"], boundary: ["table"] },
  tbody: { closes: ["thead", "tbody", "tfoot", "tr", "td", "th"], boundary: ["table"] },
  tfoot: { closes: ["thead", "tbody", "tfoot", "tr", "td", "th"], boundary: ["table"] },
  option: { closes: ["option"], boundary: ["select", "datalist"] },
};

/** Parses an HTML document or fragment into a tree rooted at a "#document" element. */
export function parseHtml(html: string): ElementNode {
  const root: ElementNode = { type: "element", name: "#document", attributes: new Map(), children: [] };
  const stack: ElementNode[] = [root];
  const current = () => stack[stack.length - 1];

  const appendText = (text: string) => {
    if (text === "") return;
    const siblings = current().children;
    const last = siblings[siblings.length - 1];
    if (last?.type === "text") last.text += text;
    else siblings.push({ type: "text", text });
  };

  const closeUntil = (name: string, boundary: readonly string[] = []) => {
    for (let index = stack.length - 1; index > 0; index--) {
      const open = stack[index].name;
      if (open === name) {
        stack.length = index;
        return;
      }
      if (boundary.includes(open)) return;
    }
  };

  let position = 0;
  while (position < html.length) {
    const lt = html.indexOf("<", position);
    if (lt === -1) {
      appendText(decodeEntities(html.slice(position)));
      break;
    }
    appendText(decodeEntities(html.slice(position, lt)));

    // Comments, doctype, CDATA and processing instructions are dropped.
    if (html.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      position = end === -1 ? html.length : end + 3;
      continue;
    }
    const next = html[lt + 1] ?? "";
    if (next === "!" || next === "?") {
      const end = html.indexOf(">", lt);
      position = end === -1 ? html.length : end + 1;
      continue;
    }

    if (next === "/") {
      endTagPattern.lastIndex = lt;
      const endTag = endTagPattern.exec(html);
      if (endTag === null) {
        // "</" without a tag name starts a bogus comment that ends at the next ">", as in browsers.
        const end = html.indexOf(">", lt);
        position = end === -1 ? html.length : end + 1;
        continue;
      }
      const name = endTag[1].toLowerCase();
      closeUntil(name);
      const end = html.indexOf(">", lt);
      position = end === -1 ? html.length : end + 1;
      continue;
    }

    if (!/[A-Za-z]/.test(next)) {
      appendText("<");
      position = lt + 1;
      continue;
    }

    const tag = readStartTag(html, lt);
    position = tag.end;
    const { name } = tag;

    if (closesParagraph.has(name)) closeUntil("p", paragraphBoundary);
    const implied = impliedEnds[name];
    if (implied !== undefined) {
      for (const closed of implied.closes) closeUntil(closed, implied.boundary);
    }

    const element: ElementNode = { type: "element", name, attributes: tag.attributes, children: [] };
    current().children.push(element);

    if (rawTextElements.has(name) && !tag.selfClosing) {
      const close = new RegExp(`</${name}\\s*>`, "gi");
      close.lastIndex = position;
      const match = close.exec(html);
      const contentEnd = match === null ? html.length : match.index;
      const content = html.slice(position, contentEnd);
      if (content !== "") element.children.push({ type: "text", text: name === "title" || name === "textarea" ? decodeEntities(content) : content });
      position = match === null ? html.length : contentEnd + match[0].length;
      continue;
    }

    if (!voidElements.has(name) && !tag.selfClosing && stack.length < maxDepth) stack.push(element);
  }
  return root;
}

// Sticky patterns: each matches exactly at its lastIndex, so no substring is copied per tag.
const endTagPattern = /<\/([A-Za-z][A-Za-z0-9:-]*)[^>]*>?/y;
const tagNamePattern = /[A-Za-z][A-Za-z0-9:-]*/y;
const attributeNamePattern = /[^\s"'>/=]+/y;
const unquotedValue = /[^\s>]*/y;

/** Reads `<name attr=value ...>` starting at `start`; attribute values are entity-decoded. */
function readStartTag(html: string, start: number): { name: string; attributes: Map<string, string>; selfClosing: boolean; end: number } {
  let position = start + 1;
  tagNamePattern.lastIndex = position;
  const nameMatch = tagNamePattern.exec(html)!;
  const name = nameMatch[0].toLowerCase();
  position += nameMatch[0].length;

  const attributes = new Map<string, string>();
  let selfClosing = false;
  while (position < html.length) {
    while (/\s/.test(html[position] ?? "")) position++;
    const char = html[position];
    if (char === undefined) break;
    if (char === ">") {
      position++;
      break;
    }
    if (char === "/") {
      position++;
      if (html[position] === ">") {
        selfClosing = true;
        position++;
        break;
      }
      continue;
    }

    attributeNamePattern.lastIndex = position;
    const attributeName = attributeNamePattern.exec(html);
    if (attributeName === null) {
      position++; // a stray quote or "="
      continue;
    }
    position += attributeName[0].length;
    while (/\s/.test(html[position] ?? "")) position++;

    let value = "";
    if (html[position] === "=") {
      position++;
      while (/\s/.test(html[position] ?? "")) position++;
      const quote = html[position];
      if (quote === '"' || quote === "'") {
        const close = html.indexOf(quote, position + 1);
        const end = close === -1 ? html.length : close;
        value = html.slice(position + 1, end);
        position = end + 1;
      } else {
        unquotedValue.lastIndex = position;
        value = unquotedValue.exec(html)![0];
        position += value.length;
      }
    }
    const key = attributeName[0].toLowerCase();
    if (!attributes.has(key)) attributes.set(key, decodeEntities(value));
  }
  return { name, attributes, selfClosing, end: position };
}
