// HTML to markdown conversion, entity decoding and code point chunking of the fetch server.

import { describe, expect, it } from "vitest";

import { sliceCodePoints } from "../../../servers/fetch/chunk.js";
import { decodeEntities } from "../../../servers/fetch/html-entities.js";
import { htmlToMarkdown } from "../../../servers/fetch/html-to-markdown.js";

const cases: Array<[string, string, string]> = [
  ["paragraphs", "<p>Uno</p><p>Due</p>", "Uno\n\nDue"],
  ["unclosed paragraphs", "<p>Uno<p>Due<div>Tre</div>", "Uno\n\nDue\n\nTre"],
  ["headings", "<h1>Titolo</h1><h3>Sotto <em>titolo</em></h3>", "# Titolo\n\n### Sotto *titolo*"],
  ["whitespace collapse", "<p>  molto\n\n   spazio\t qui  </p>", "molto spazio qui"],
  ["line breaks", "<p>riga uno<br>riga due<br/>riga tre</p>", "riga uno\nriga due\nriga tre"],
  ["emphasis spacing", "<p>un <b> caffè </b>amaro</p>", "un **caffè** amaro"],
  ["empty emphasis", "<p>a<b> </b>b</p>", "a b"],
  ["strikethrough", "<p><del>vecchio</del> nuovo</p>", "~~vecchio~~ nuovo"],
  ["inline code with backticks", "<p><code>a`b</code></p>", "`` a`b ``"],
  ["unordered list", "<ul><li>uno</li><li>due</li></ul>", "- uno\n- due"],
  ["ordered list with start", '<ol start="3"><li>tre<li>quattro</ol>', "3. tre\n4. quattro"],
  ["nested list", "<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li></ul>", "- a\n  - b\n    - c"],
  ["list item paragraphs", "<ol><li><p>primo</p><p>continua</p></li></ol>", "1. primo\n   continua"],
  ["blockquote", "<blockquote><p>Citazione</p><p>seconda</p></blockquote>", "> Citazione\n>\n> seconda"],
  ["preformatted", "<pre>  indentato\n    di più</pre>", "```\n  indentato\n    di più\n```"],
  ["code fence with backticks", "<pre><code>```js\nx\n```</code></pre>", "````\n```js\nx\n```\n````"],
  ["table with header", "<table><thead><tr><th>A</th><th>B</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>", "| A | B |\n| --- | --- |\n| 1 | 2 |"],
  ["table with colspan and pipes", '<table><tr><td colspan="2">a|b</td></tr><tr><td>1<td>2</table>', "| a\\|b |  |\n| --- | --- |\n| 1 | 2 |"],
  ["table with caption", "<table><caption>Prezzi</caption><tr><td>x</td></tr></table>", "Prezzi\n\n| x |\n| --- |"],
  ["definition list", "<dl><dt>Moka</dt><dd>caffettiera</dd></dl>", "**Moka**\n\n  caffettiera"],
  ["link", '<a href="https://example.com/a b">sito</a>', "[sito](https://example.com/a%20b)"],
  ["link without text", '<a href="https://example.com/"></a>', "[https://example.com/](https://example.com/)"],
  ["fragment link", '<a href="#sezione">vai</a>', "vai"],
  ["javascript link", '<a href="javascript:alert(1)">clic</a>', "clic"],
  ["mailto link", '<a href="mailto:bar@example.com">scrivi</a>', "[scrivi](mailto:bar@example.com)"],
  ["link with parentheses", '<a href="https://it.wikipedia.org/wiki/Moka_(caffettiera)">moka</a>', "[moka](https://it.wikipedia.org/wiki/Moka_%28caffettiera%29)"],
  ["image", '<img src="https://example.com/t.jpg" alt="tazza [blu]">', "![tazza \\[blu\\]](https://example.com/t.jpg)"],
  ["data image", '<img src="data:image/png;base64,AAAA" alt="pixel">', "[image: pixel]"],
  ["horizontal rule", "<p>a</p><hr><p>b</p>", "a\n\n---\n\nb"],
  ["skipped elements", "<p>vero</p><script>falso()</script><style>p{}</style><template><p>no</p></template><noscript>no</noscript>", "vero"],
  ["form controls", '<form><label>Nome</label><input value="x"><button>Invia</button><select><option>uno</option></select></form>', "Nome"],
  ["hidden elements", "<p>visibile</p><p hidden>nascosto</p>", "visibile"],
  ["comments and doctype", "<!doctype html><!-- commento --><p>testo</p><?xml nope?>", "testo"],
  ["named entities", "<p>caff&egrave; &amp; citt&agrave; &mdash; &laquo;s&igrave;&raquo; &euro;5</p>", "caffè & città — «sì» €5"],
  ["numeric entities", "<p>&#233; &#x1F600; &#0; &#xD800;</p>", "é 😀 \uFFFD \uFFFD"],
  ["unknown entity", "<p>&notanentity; &amp</p>", "&notanentity; &"],
  ["stray angle brackets", "<p>3 < 5 and 7 > 2 </ p></p>", "3 < 5 and 7 > 2"],
  ["unclosed tag at end", "<p>fine <b", "fine"],
  ["uppercase tags", "<P>Ciao <B>MONDO</B></P>", "Ciao **MONDO**"],
  ["unquoted attributes", "<a href=https://example.com/x title=t>x</a>", "[x](https://example.com/x)"],
  ["main only", "<body><nav>menu</nav><main><p>contenuto</p></main><footer>piè</footer></body>", "contenuto"],
  ["title prefix", "<html><head><title>Pagina &amp; co</title></head><body><p>testo</p></body></html>", "# Pagina & co\n\ntesto"],
  ["emoji and accents", "<p>Perché 😀 è così 🇮🇹</p>", "Perché 😀 è così 🇮🇹"],
  ["non-breaking spaces", "<p>a&nbsp;&nbsp;b</p>", "a b"],
  ["inline blocks in link", '<a href="https://e.com/"><div>card</div><div>text</div></a>', "[card text](https://e.com/)"],
];

describe("htmlToMarkdown", () => {
  it.each(cases)("converts %s", (_name, html, expected) => {
    expect(htmlToMarkdown(html)).toBe(expected);
  });

  it("resolves relative links against the page", () => {
    const markdown = htmlToMarkdown('<a href="../menu?x=1">menù</a> <img src="img/a.png" alt="a">', { baseUrl: "https://bar.example/it/pagina/" });

    expect(markdown).toBe("[menù](https://bar.example/it/menu?x=1) ![a](https://bar.example/it/pagina/img/a.png)");
  });

  it("honours a base element", () => {
    const markdown = htmlToMarkdown('<head><base href="https://cdn.example/root/"></head><body><a href="x">x</a></body>', { baseUrl: "https://bar.example/" });

    expect(markdown).toBe("[x](https://cdn.example/root/x)");
  });

  it("survives deep nesting", () => {
    const html = "<div>".repeat(20_000) + "profondo" + "</div>".repeat(20_000);

    expect(htmlToMarkdown(html)).toBe("profondo");
  });

  it("never throws on random markup", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pieces = ["<", ">", "</", "p", "li", "ul", "table", "td", "a href='", '"', "&amp", "&#", "x", "è", "😀", " ", "\n", "<!--", "-->", "<pre>", "<script>", "=", "/"];
    for (let round = 0; round < 200; round++) {
      const html = Array.from({ length: 200 }, () => pieces[Math.floor(random() * pieces.length)]).join("");
      expect(() => htmlToMarkdown(html)).not.toThrow();
    }
  });

  it("converts a large page quickly", () => {
    const row = "<tr><td>caffè</td><td>1,20 €</td></tr>";
    const html = `<table>${row.repeat(20_000)}</table><script>${"x".repeat(100_000)}</script>` + "<p>fine</p>".repeat(5_000);
    const started = performance.now();
    const markdown = htmlToMarkdown(html);

    expect(markdown.split("\n").length).toBeGreaterThan(20_000);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("decodeEntities", () => {
  it("decodes Latin-1 names", () => {
    expect(decodeEntities("&Agrave;&Egrave;&Igrave;&Ograve;&Ugrave; &agrave;&egrave;&eacute;&igrave;&ograve;&ugrave; &ccedil;&szlig;&yuml;")).toBe("ÀÈÌÒÙ àèéìòù çßÿ");
  });

  it("requires semicolons except for legacy names", () => {
    expect(decodeEntities("&amp &lt &copy &egrave")).toBe("& < © &egrave");
  });
});

describe("sliceCodePoints", () => {
  it("counts code points, not UTF-16 units", () => {
    const chunk = sliceCodePoints("a😀b😀c", 1, 3);

    expect(chunk).toEqual({ text: "😀b😀", start: 1, end: 4, total: 5 });
  });

  it("clamps past the end", () => {
    expect(sliceCodePoints("caffè", 3, 10)).toEqual({ text: "fè", start: 3, end: 5, total: 5 });
    expect(sliceCodePoints("caffè", 9, 10)).toEqual({ text: "", start: 5, end: 5, total: 5 });
  });

  it("joins back to the whole text", () => {
    const text = "Perché 😀 città 🏙️ è così ".repeat(50);
    const parts: string[] = [];
    for (let start = 0; ; start += 7) {
      const chunk = sliceCodePoints(text, start, 7);
      if (chunk.text === "") break;
      parts.push(chunk.text);
    }

    expect(parts.join("")).toBe(text);
  });
});
