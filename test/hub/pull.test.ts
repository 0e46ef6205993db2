import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scanCacheDir } from "@huggingface/hub";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { pullModel, type PullOptions } from "../../src/hub/pull.js";
import type { PullProgressEvent } from "../../src/hub/progress.js";
import { syntheticModelFiles, syntheticRepo, temporaryDirectory } from "./fixture-repo.js";
import { gitBlobSha1, randomCommit, sha256, startHubServer, type FixtureRepo, type HubServer } from "./hub-server.js";

const repo = syntheticRepo("mii-llm/nesso-test-mlx");
const gatedRepo: FixtureRepo = { ...syntheticRepo("mii-llm/nesso-gated-mlx", 11), requiredToken: "hf_test_token_è" };
const scriptsOnlyRepo: FixtureRepo = { id: "mii-llm/scripts-only", commit: randomCommit(), files: [{ name: "train.py", content: Buffer.from("pass\n"), lfs: false }] };
const fileOf = (fixture: FixtureRepo, name: string) => fixture.files.find((file) => file.name === name)!;
const weights = fileOf(repo, "model.safetensors");

let server: HubServer;
let cache: { dir: string; remove: () => void };
let repoRoot: string;

beforeAll(async () => {
  server = await startHubServer([repo, gatedRepo, scriptsOnlyRepo]);
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  cache = temporaryDirectory("nesso-hub-cache-");
  repoRoot = join(cache.dir, "models--mii-llm--nesso-test-mlx");
  server.resetCounters();
  delete server.faults.cut;
  delete server.faults.stall;
  delete server.faults.ignoreRange;
  delete server.faults.unavailable;
  delete server.faults.corrupt;
  delete server.faults.redirectTo;
});
afterEach(() => cache.remove());

/** Pull options for the test server: the endpoint comes from HF_ENDPOINT, as for a user. */
function options(extra: Partial<PullOptions> = {}, env: NodeJS.ProcessEnv = {}): PullOptions {
  return {
    repo: repo.id,
    env: { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache.dir, HF_HOME: join(cache.dir, "no-home"), ...env },
    retryDelayMs: 10,
    ...extra,
  };
}

/** Returns the CDN GET requests for the weights file. */
function weightRequests() {
  return server.requests.filter((request) => request.server === "cdn" && request.method === "GET" && request.path.endsWith(sha256(weights.content)));
}

function hubRequests(method: string, pathPart: string) {
  return server.requests.filter((request) => request.method === method && request.path.includes(pathPart));
}

describe("pullModel", () => {
  it("downloads only the model files", async () => {
    const result = await pullModel(options());

    expect(result.commit).toBe(repo.commit);
    expect(result.snapshotDir).toBe(join(repoRoot, "snapshots", repo.commit));
    expect(result.files.map((file) => file.name)).toEqual(syntheticModelFiles);
    expect(result.files.every((file) => file.downloaded)).toBe(true);
    for (const name of syntheticModelFiles) {
      expect(readFileSync(join(result.snapshotDir, name)).equals(fileOf(repo, name).content), name).toBe(true);
    }
    expect(server.bytesSent.get("model.safetensors")).toBe(weights.content.length);
    expect(server.bytesSent.has("convert.py")).toBe(false);
    expect(server.bytesSent.has("original/consolidated.bin")).toBe(false);
  });

  it("writes the Hub cache layout", async () => {
    await pullModel(options());

    expect(readdirSync(cache.dir)).toEqual(["models--mii-llm--nesso-test-mlx"]);
    expect(readdirSync(repoRoot).sort()).toEqual(["blobs", "refs", "snapshots"]);
    expect(readdirSync(join(repoRoot, "refs"))).toEqual(["main"]);
    expect(readFileSync(join(repoRoot, "refs", "main"), "utf8")).toBe(repo.commit);
    expect(readdirSync(join(repoRoot, "snapshots"))).toEqual([repo.commit]);

    // Blobs are named by ETag: sha256 for LFS files, the git blob sha1 otherwise.
    const expectedBlobs = syntheticModelFiles.map((name) => {
      const file = fileOf(repo, name);
      return file.lfs ? sha256(file.content) : gitBlobSha1(file.content);
    });
    expect(readdirSync(join(repoRoot, "blobs")).sort()).toEqual(expectedBlobs.slice().sort());

    for (const [index, name] of syntheticModelFiles.entries()) {
      const link = join(repoRoot, "snapshots", repo.commit, name);
      expect(lstatSync(link).isSymbolicLink(), name).toBe(true);
      expect(readlinkSync(link)).toBe(`../../blobs/${expectedBlobs[index]}`);
    }
  });

  it("writes a cache that @huggingface/hub's scanner reads", async () => {
    await pullModel(options());

    const scan = await scanCacheDir(cache.dir);
    expect(scan.warnings).toEqual([]);
    expect(scan.repos).toHaveLength(1);
    const [cached] = scan.repos;
    expect(cached.id).toEqual({ name: repo.id, type: "model" });
    expect(cached.revisions).toHaveLength(1);
    expect(cached.revisions[0].commitOid).toBe(repo.commit);
    expect(cached.revisions[0].refs).toEqual(["main"]);
    expect(cached.revisions[0].files.map((file) => file.path.split("/").pop()).sort()).toEqual(syntheticModelFiles);
    expect(cached.size).toBe(syntheticModelFiles.reduce((sum, name) => sum + fileOf(repo, name).content.length, 0));
  });

  it("downloads nothing on a second pull", async () => {
    await pullModel(options());
    server.resetCounters();

    const second = await pullModel(options());

    expect(second.files.map((file) => file.downloaded)).toEqual(syntheticModelFiles.map(() => false));
    expect(second.files.find((file) => file.name === "model.safetensors")?.bytes).toBe(weights.content.length);
    expect(server.bytesSent.size).toBe(0);
    expect(server.requests.map((request) => `${request.method} ${request.path}`)).toEqual([`GET /api/models/${repo.id}/revision/main`]);
  });

  it("links blobs another tool already cached", async () => {
    // huggingface-cli left the weights blob of an older commit; only the snapshot link is new.
    const blobs = join(repoRoot, "blobs");
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, sha256(weights.content)), weights.content);

    const result = await pullModel(options());

    expect(result.files.find((file) => file.name === "model.safetensors")?.downloaded).toBe(false);
    expect(server.bytesSent.has("model.safetensors")).toBe(false);
    expect(server.bytesSent.get("config.json")).toBe(fileOf(repo, "config.json").content.length);
    expect(readFileSync(join(result.snapshotDir, "model.safetensors")).equals(weights.content)).toBe(true);
  });

  it("resumes an interrupted download", async () => {
    const cutAt = 1_000_000;
    server.faults.cut = { file: "model.safetensors", afterBytes: cutAt, times: 1 };

    const failure = await pullModel(options({ retries: 0 })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NessoError);
    expect((failure as NessoError).code).toBe("DOWNLOAD");
    expect((failure as Error).message).toMatch(/connection broke after byte \d+ of 3145728 .*partial file .*\.incomplete is kept/);

    // Nothing looks complete: no blob, no snapshot entry, no ref; only the partial file.
    const blob = join(repoRoot, "blobs", sha256(weights.content));
    expect(existsSync(blob)).toBe(false);
    expect(existsSync(join(repoRoot, "snapshots", repo.commit, "model.safetensors"))).toBe(false);
    expect(existsSync(join(repoRoot, "refs", "main"))).toBe(false);
    // The client may lose the last chunks it had buffered when the connection broke.
    const kept = readFileSync(`${blob}.incomplete`);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(cutAt);
    expect(kept.equals(weights.content.subarray(0, kept.length))).toBe(true);

    server.resetCounters();
    const events: PullProgressEvent[] = [];
    const result = await pullModel(options({ onProgress: (event) => events.push(event) }));

    expect(weightRequests().map((request) => request.range)).toEqual([`bytes=${kept.length}-`]);
    expect(server.bytesSent.get("model.safetensors")).toBe(weights.content.length - kept.length);
    expect(events.find((event) => event.kind === "file-start" && event.file === "model.safetensors")).toMatchObject({ resumedFrom: kept.length });
    expect(readFileSync(join(result.snapshotDir, "model.safetensors")).equals(weights.content)).toBe(true);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
  });

  it("retries a broken connection from where it stopped", async () => {
    server.faults.cut = { file: "model.safetensors", afterBytes: 2_000_000, times: 1 };

    const result = await pullModel(options({ retries: 3 }));

    const ranges = weightRequests().map((request) => request.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(2_000_000);
    // Only the bytes the client lost at the break went over the wire twice.
    expect(server.bytesSent.get("model.safetensors")).toBe(weights.content.length + 2_000_000 - resumedAt);
    expect(readFileSync(join(result.snapshotDir, "model.safetensors")).equals(weights.content)).toBe(true);
  });

  it("retries HTTP 503 from the API", async () => {
    server.faults.unavailable = { path: "/", times: 2 };

    const result = await pullModel(options());

    expect(result.files.every((file) => file.downloaded)).toBe(true);
    const failed = server.requests.slice(0, 3).map((request) => `${request.method} ${request.path}`);
    expect(failed).toEqual([`GET /api/models/${repo.id}/revision/main`, `GET /api/models/${repo.id}/revision/main`, `GET /api/models/${repo.id}/revision/main`]);
  });

  it("gives up after the last retry", async () => {
    server.faults.unavailable = { path: "/resolve/", times: 10 };

    const failure = await pullModel(options({ retries: 2 })).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("DOWNLOAD");
    expect((failure as Error).message).toContain("returned HTTP 503; the Hub is busy or failing, try again later");
    expect(hubRequests("HEAD", "/resolve/")).toHaveLength(3);
  });

  it("drops a stalled connection and resumes", async () => {
    server.faults.stall = { file: "model.safetensors", afterBytes: 500_000, times: 1 };

    const result = await pullModel(options({ readTimeoutMs: 300 }));

    const ranges = weightRequests().map((request) => request.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(readFileSync(join(result.snapshotDir, "model.safetensors")).equals(weights.content)).toBe(true);
  });

  it("restarts when the server ignores Range", async () => {
    server.faults.cut = { file: "model.safetensors", afterBytes: 1_000_000, times: 1 };
    server.faults.ignoreRange = { file: "model.safetensors" };

    const result = await pullModel(options());

    const ranges = weightRequests().map((request) => request.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    // The second response was the whole file from byte 0, and it replaced the partial bytes.
    expect(server.bytesSent.get("model.safetensors")).toBe(1_000_000 + weights.content.length);
    expect(readFileSync(join(result.snapshotDir, "model.safetensors")).equals(weights.content)).toBe(true);
  });

  it("rejects a corrupted LFS transfer by sha256", async () => {
    server.faults.corrupt = { file: "model.safetensors" };

    const failure = await pullModel(options()).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("DOWNLOAD");
    expect((failure as Error).message).toContain(`checksum mismatch, the sha256 of the ${weights.content.length} downloaded bytes`);
    expect((failure as Error).message).toContain(`the Hub's ETag is ${sha256(weights.content)}`);
    const blob = join(repoRoot, "blobs", sha256(weights.content));
    expect(existsSync(blob)).toBe(false);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
    expect(existsSync(join(repoRoot, "snapshots", repo.commit, "model.safetensors"))).toBe(false);
  });

  it("rejects a corrupted git file by blob sha1", async () => {
    server.faults.corrupt = { file: "config.json" };

    const failure = await pullModel(options()).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("DOWNLOAD");
    expect((failure as Error).message).toContain("checksum mismatch, the git-blob-sha1");
    expect((failure as Error).message).toContain(gitBlobSha1(fileOf(repo, "config.json").content));
    expect(existsSync(join(repoRoot, "snapshots", repo.commit, "config.json"))).toBe(false);
  });

  it("explains HF_TOKEN on a 401 for a gated repo", async () => {
    const failure = await pullModel(options({ repo: gatedRepo.id })).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("DOWNLOAD");
    const message = (failure as Error).message;
    expect(message).toContain("returned HTTP 401");
    expect(message).toContain(`${gatedRepo.id} is gated or private`);
    expect(message).toContain("set HF_TOKEN=<token>");
    expect(message).toContain(`${server.url}/settings/tokens`);
  });

  it("names the token source when the token is rejected", async () => {
    const failure = await pullModel(options({ repo: gatedRepo.id }, { HF_TOKEN: "hf_wrong" })).catch((error: unknown) => error);

    expect((failure as Error).message).toContain("rejected the token from HF_TOKEN");
    expect((failure as Error).message).not.toContain("hf_wrong");
  });

  it("sends HF_TOKEN to the Hub but not to the CDN", async () => {
    const result = await pullModel(options({ repo: gatedRepo.id }, { HF_TOKEN: gatedRepo.requiredToken }));

    expect(readFileSync(join(result.snapshotDir, "model.safetensors")).equals(fileOf(gatedRepo, "model.safetensors").content)).toBe(true);
    const hub = server.requests.filter((request) => request.server === "hub");
    const cdn = server.requests.filter((request) => request.server === "cdn");
    expect(hub.length).toBeGreaterThan(0);
    expect(cdn.length).toBeGreaterThan(0);
    expect(hub.every((request) => request.authorization === `Bearer ${gatedRepo.requiredToken}`)).toBe(true);
    expect(cdn.every((request) => request.authorization === undefined)).toBe(true);
  });

  it("reads the token file in HF_HOME", async () => {
    const home = join(cache.dir, "hf-home");
    mkdirSync(home);
    writeFileSync(join(home, "token"), `${gatedRepo.requiredToken}\n`);

    const result = await pullModel(options({ repo: gatedRepo.id }, { HF_HOME: home }));

    expect(result.files.every((file) => file.downloaded)).toBe(true);
  });

  it("uses the cache in offline mode", async () => {
    const online = await pullModel(options());
    server.resetCounters();

    const offline = await pullModel(options({}, { HF_HUB_OFFLINE: "1" }));

    expect(server.requests).toEqual([]);
    expect(offline.snapshotDir).toBe(online.snapshotDir);
    expect(offline.commit).toBe(repo.commit);
    expect(offline.files.map((file) => file.name)).toEqual(syntheticModelFiles);
    expect(offline.files.every((file) => !file.downloaded)).toBe(true);
  });

  it("fails offline when the cache lacks the model", async () => {
    const failure = await pullModel(options({}, { HF_HUB_OFFLINE: "true" })).catch((error: unknown) => error);

    expect(server.requests).toEqual([]);
    expect((failure as NessoError).code).toBe("MODEL_NOT_FOUND");
    expect((failure as Error).message).toContain("offline mode is on (HF_HUB_OFFLINE)");
    expect((failure as Error).message).toContain(join(repoRoot, "refs", "main"));
  });

  it("keeps refs/main on the last complete snapshot when a pull fails", async () => {
    const oldCommit = randomCommit();
    mkdirSync(join(repoRoot, "refs"), { recursive: true });
    writeFileSync(join(repoRoot, "refs", "main"), oldCommit);
    server.faults.corrupt = { file: "model.safetensors" };

    await expect(pullModel(options())).rejects.toThrow(/checksum mismatch/);

    expect(readFileSync(join(repoRoot, "refs", "main"), "utf8")).toBe(oldCommit);
  });

  it("pulls a commit without writing a ref", async () => {
    const result = await pullModel(options({ revision: repo.commit }));

    expect(result.snapshotDir).toBe(join(repoRoot, "snapshots", repo.commit));
    expect(existsSync(join(repoRoot, "refs"))).toBe(false);
    expect(hubRequests("GET", `/revision/${repo.commit}`)).toHaveLength(1);
  });

  it("reports an unknown revision", async () => {
    const failure = await pullModel(options({ revision: "v9" })).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("MODEL_NOT_FOUND");
    expect((failure as Error).message).toContain(`revision "v9" of ${repo.id} was not found`);
  });

  it("reports an unknown repo", async () => {
    const failure = await pullModel(options({ repo: "mii-llm/does-not-exist" })).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("MODEL_NOT_FOUND");
    expect((failure as Error).message).toContain("the repo mii-llm/does-not-exist was not found");
  });

  it("rejects a repo without weights", async () => {
    const failure = await pullModel(options({ repo: scriptsOnlyRepo.id })).catch((error: unknown) => error);

    expect((failure as NessoError).code).toBe("INVALID_MODEL");
    expect((failure as Error).message).toContain("has no model*.safetensors weights");
    expect((failure as Error).message).toContain("train.py");
    expect(existsSync(join(cache.dir, "models--mii-llm--scripts-only"))).toBe(false);
  });

  it("rejects an invalid repo id before any request", async () => {
    await expect(pullModel(options({ repo: "../etc" }))).rejects.toThrow(/repo id "\.\.\/etc" is invalid/);
    await expect(pullModel(options({ repo: "org/name", revision: "../../x" }))).rejects.toThrow(/revision "\.\.\/\.\.\/x" is invalid/);
    expect(server.requests).toEqual([]);
  });

  it("rejects invalid retry and timeout options", async () => {
    await expect(pullModel(options({ retries: -1 }))).rejects.toThrow("pullModel: option retries must be an integer >= 0, got -1");
    await expect(pullModel(options({ readTimeoutMs: 0 }))).rejects.toThrow("pullModel: option readTimeoutMs must be an integer >= 1, got 0");
    await expect(pullModel(options({ retryDelayMs: 1.5 }))).rejects.toThrow("pullModel: option retryDelayMs must be an integer >= 0, got 1.5");
    expect(server.requests).toEqual([]);
  });

  it("stops on abort and keeps the partial file", async () => {
    const controller = new AbortController();
    const reason = new NessoError("ABORTED", "pull cancelled by the test");
    const onProgress = (event: PullProgressEvent) => {
      if (event.kind === "file-progress" && event.file === "model.safetensors" && event.bytesOnDisk >= 1_000_000) controller.abort(reason);
    };

    const failure = await pullModel(options({ signal: controller.signal, onProgress })).catch((error: unknown) => error);

    expect(failure).toBe(reason);
    const blob = join(repoRoot, "blobs", sha256(weights.content));
    expect(existsSync(blob)).toBe(false);
    const kept = readFileSync(`${blob}.incomplete`);
    expect(kept.length).toBeGreaterThanOrEqual(1_000_000);
    expect(kept.equals(weights.content.subarray(0, kept.length))).toBe(true);
  });

  it("reports progress events in order", async () => {
    const events: PullProgressEvent[] = [];
    await pullModel(options({ onProgress: (event) => events.push(event) }));

    const kinds = events.map((event) => event.kind).filter((kind, index, all) => kind !== "file-progress" || all[index - 1] !== "file-progress");
    expect(kinds[0]).toBe("plan");
    expect(kinds.at(-1)).toBe("done");
    expect(events[0]).toMatchObject({ kind: "plan", repo: repo.id, commit: repo.commit });
    const plan = events[0] as PullProgressEvent & { kind: "plan" };
    expect(plan.bytesToDownload).toBe(syntheticModelFiles.reduce((sum, name) => sum + fileOf(repo, name).content.length, 0));
    const progress = events.filter((event) => event.kind === "file-progress" && event.file === "model.safetensors");
    expect(progress.at(-1)).toMatchObject({ bytesOnDisk: weights.content.length, bytes: weights.content.length });
    const done = events.at(-1) as PullProgressEvent & { kind: "done" };
    expect(done.bytesTransferred).toBe(plan.bytesToDownload);
  });
});
