// Keeps the Hub tests on this machine: replaces the global fetch with one that rejects any URL
// whose host is not 127.0.0.1, localhost or ::1, and records what it blocked. pullModel uses the
// global fetch looked up at call time, so every request and redirect hop passes through here.

export const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** URLs the guard rejected in this test file. */
export const blockedUrls: string[] = [];

let originalFetch: typeof fetch | undefined;

function requestUrl(input: Parameters<typeof fetch>[0]): URL {
  if (input instanceof Request) return new URL(input.url);
  return new URL(String(input));
}

/** Installs the guard once per test file; later calls do nothing. */
export function installLoopbackGuard(): void {
  if (originalFetch !== undefined) return;
  const original = globalThis.fetch;
  originalFetch = original;
  const guarded: typeof fetch = (input, init) => {
    const url = requestUrl(input);
    if (!loopbackHosts.has(url.hostname)) {
      blockedUrls.push(url.href);
      return Promise.reject(new TypeError(`loopback guard: a test tried to reach ${url.host}; Hub tests may only reach 127.0.0.1`));
    }
    return original(input, init);
  };
  globalThis.fetch = guarded;
}

/** Returns whether the global fetch is the guard. */
export function isLoopbackGuardInstalled(): boolean {
  return originalFetch !== undefined && globalThis.fetch !== originalFetch;
}
