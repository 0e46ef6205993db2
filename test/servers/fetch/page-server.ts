// A local HTTP server on 127.0.0.1 with the pages the fetch tests read: Italian HTML with emoji,
// long text, errors, binary bodies, slow and large responses, and legacy charsets.

import { createServer } from "node:http";

export const italianPage = `<!doctype html>
<html lang="it">
<head>
  <meta charset="utf-8">
  <title>Caffè &amp; cornetto</title>
  <style>body { font-family: serif; }</style>
  <script>document.write("<p>questo non deve comparire</p>");</script>
</head>
<body>
  <nav><a href="/">Home</a> | <a href="/menu">Menù</a></nav>
  <main>
    <h1>Perché il caffè napoletano è speciale ☕</h1>
    <p>A <strong>Napoli</strong> l'<em>espresso</em> si beve al banco, in piedi. È un rito 😀 che dura pochi secondi.</p>
    <p>Leggi anche <a href="/storia?anno=1901&amp;città=napoli">la storia della moka</a>.</p>
    <h2>Cosa ordinare</h2>
    <ul>
      <li>Caffè ristretto
      <li>Cappuccino (solo la mattina!)
        <ul><li>con cacao</li><li>senza schiuma</li></ul>
      </li>
    </ul>
    <table>
      <tr><th>Bevanda</th><th>Prezzo</th></tr>
      <tr><td>Espresso</td><td>1,20 €</td></tr>
      <tr><td>Cornetto</td><td>1,50 €</td></tr>
    </table>
    <img src="/foto/tazzina.jpg" alt="Una tazzina">
    <pre><code class="language-bash">echo "caffè"</code></pre>
    <p>Grazie&nbsp;e arrivederci &#x1F44B;</p>
  </main>
  <footer>© 2026 Bar Sport</footer>
</body>
</html>`;

/** 100 numbered lines with accents and an emoji each, so that chunk boundaries cross them. */
export const longText = Array.from({ length: 100 }, (_, index) => `Riga ${index + 1}: perché sì, caffè ☕ e città 🏙️`).join("\n");

// The 8-byte PNG signature plus an IHDR chunk header: enough to be binary.
const pngBytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]);

export interface PageServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234. */
  url: string;
  close(): Promise<void>;
}

export async function startPageServer(): Promise<PageServer> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    switch (path) {
      case "/pagina.html":
        response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(italianPage);
        return;
      case "/lungo.txt":
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end(longText);
        return;
      case "/mancante":
        response.writeHead(404, "Not Found", { "content-type": "text/html" }).end("<h1>Pagina non trovata</h1>");
        return;
      case "/immagine.png":
        response.writeHead(200, { "content-type": "image/png", "content-length": pngBytes.length }).end(pngBytes);
        return;
      case "/dati.bin":
        response.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.from([0, 1, 2, 3, 0, 255]));
        return;
      case "/senza-tipo-binario":
        response.end(Buffer.from([0x00, 0x01, 0x02, 0x00, 0x41]));
        return;
      case "/senza-tipo":
        response.end("Testo semplice senza Content-Type: però funziona 👍");
        return;
      case "/dati.json":
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ città: "Roma", emoji: "🍝" }));
        return;
      case "/latin1.html":
        response.writeHead(200, { "content-type": "text/html; charset=iso-8859-1" }).end(Buffer.from("<p>Perché la città è così bella</p>", "latin1"));
        return;
      case "/meta-latin1.html":
        response.writeHead(200, { "content-type": "text/html" }).end(Buffer.from('<html><head><meta charset="windows-1252"></head><body><p>Più caffè</p></body></html>', "latin1"));
        return;
      case "/grande.txt":
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("x".repeat(300_000));
        return;
      case "/lento":
        setTimeout(() => response.writeHead(200, { "content-type": "text/plain" }).end("troppo tardi"), 5000).unref();
        return;
      case "/redirect":
        response.writeHead(302, { location: "/pagina.html" }).end();
        return;
      default:
        response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
