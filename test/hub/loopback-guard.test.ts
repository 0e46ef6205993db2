import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { pullModel } from "../../src/hub/pull.js";
import { defaultEndpoint, resolveEndpoint } from "../../src/hub/settings.js";
import { syntheticRepo, temporaryDirectory } from "./fixture-repo.js";
import { startHubServer, type HubServer } from "./hub-server.js";
import { blockedUrls, isLoopbackGuardInstalled } from "./loopback-guard.js";

const repo = syntheticRepo("mii-llm/nesso-guard-mlx");
let server: HubServer;
let cache: { dir: string; remove: () => void };

beforeAll(async () => {
  server = await startHubServer([repo]);
  cache = temporaryDirectory("nesso-hub-guard-");
});
afterAll(async () => {
  await server.close();
  cache.remove();
});
beforeEach(() => {
  blockedUrls.length = 0;
  server.resetCounters();
});

describe("loopback guard", () => {
  it("is installed by the test server module", () => {
    expect(isLoopbackGuardInstalled()).toBe(true);
  });

  it("is needed because the default endpoint is public", () => {
    expect(resolveEndpoint(undefined, {})).toBe(defaultEndpoint);
    expect(resolveEndpoint(undefined, { HF_ENDPOINT: `${server.url}/` })).toBe(server.url);
  });

  it("blocks a pull without HF_ENDPOINT", async () => {
    const failure = await pullModel({ repo: repo.id, env: { HF_HUB_CACHE: cache.dir }, retries: 0 }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(NessoError);
    expect((failure as NessoError).code).toBe("DOWNLOAD");
    expect((failure as Error).message).toContain("loopback guard");
    expect(blockedUrls).toEqual([`${defaultEndpoint}/api/models/${repo.id}/revision/main`]);
  });

  it("blocks a redirect to another host", async () => {
    server.faults.redirectTo = { file: "model.safetensors", url: "http://198.51.100.7/lfs/weights" };

    const failure = await pullModel({ repo: repo.id, env: { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache.dir }, retries: 0 }).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("DOWNLOAD");
    expect((failure as Error).message).toContain("downloading model.safetensors");
    expect(blockedUrls).toEqual(["http://198.51.100.7/lfs/weights"]);
    expect(server.requests.filter((request) => request.server === "cdn" && request.path.includes("model.safetensors"))).toEqual([]);
  });
});
