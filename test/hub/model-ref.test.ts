import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ensureModel, formatPullCommand, ModelNotFoundError, resolveModelReference } from "../../src/hub/model-ref.js";
import { pullModel } from "../../src/hub/pull.js";
import { defaultRepo } from "../../src/hub/settings.js";
import { syntheticRepo, temporaryDirectory } from "./fixture-repo.js";
import { startHubServer, type HubServer } from "./hub-server.js";

const repo = syntheticRepo("mii-llm/nesso-ref-mlx");
const defaultFixture = syntheticRepo(defaultRepo, 3);
let server: HubServer;
let cache: { dir: string; remove: () => void };
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startHubServer([repo, defaultFixture]);
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  cache = temporaryDirectory("nesso-hub-ref-");
  env = { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache.dir };
});
afterEach(() => cache.remove());

async function failureOf(promise: Promise<unknown>): Promise<ModelNotFoundError> {
  const failure = await promise.catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(ModelNotFoundError);
  return failure as ModelNotFoundError;
}

describe("resolveModelReference", () => {
  it("resolves a pulled repo id to its snapshot", async () => {
    const pulled = await pullModel({ repo: repo.id, env });

    const reference = await resolveModelReference(repo.id, { env });

    expect(reference).toEqual({ dir: pulled.snapshotDir, repo: repo.id, revision: "main", commit: repo.commit });
  });

  it("uses the default repo when nothing is given", async () => {
    const pulled = await pullModel({ env });

    expect(pulled.repo).toBe(defaultRepo);
    expect((await resolveModelReference(undefined, { env })).dir).toBe(pulled.snapshotDir);
    expect((await resolveModelReference("  ", { env })).dir).toBe(pulled.snapshotDir);
  });

  it("gives the exact pull command for a missing repo", async () => {
    const failure = await failureOf(resolveModelReference(repo.id, { env }));

    expect(failure.code).toBe("MODEL_NOT_FOUND");
    expect(failure.pullCommand).toBe(`nesso-mcp pull ${repo.id}`);
    expect(failure.message).toBe(`model ${repo.id} is not in the Hugging Face cache ${cache.dir}; download it with: nesso-mcp pull ${repo.id}`);
    expect(failure.repo).toBe(repo.id);
    expect(failure.cacheDir).toBe(cache.dir);
  });

  it("adds the revision to the pull command", async () => {
    await pullModel({ repo: repo.id, env });

    const failure = await failureOf(resolveModelReference(repo.id, { env, revision: "v2" }));

    expect(failure.pullCommand).toBe(`nesso-mcp pull ${repo.id} --revision v2`);
    expect(failure.message).toContain(`model ${repo.id} at v2 is not in the Hugging Face cache`);
  });

  it("resolves a commit revision without a ref", async () => {
    const pulled = await pullModel({ repo: repo.id, env, revision: repo.commit });

    expect((await resolveModelReference(repo.id, { env, revision: repo.commit })).dir).toBe(pulled.snapshotDir);
  });

  it("reports an incomplete snapshot", async () => {
    const pulled = await pullModel({ repo: repo.id, env });
    rmSync(join(pulled.snapshotDir, "model.safetensors"));

    const failure = await failureOf(resolveModelReference(repo.id, { env }));

    expect(failure.message).toContain(`${pulled.snapshotDir} lacks model.safetensors; finish the download with: nesso-mcp pull ${repo.id}`);
  });

  it("reports a dangling snapshot link", async () => {
    const pulled = await pullModel({ repo: repo.id, env });
    const blobs = join(cache.dir, "models--mii-llm--nesso-ref-mlx", "blobs");
    rmSync(blobs, { recursive: true });

    const failure = await failureOf(resolveModelReference(repo.id, { env }));

    expect(failure.message).toContain(`${pulled.snapshotDir} lacks config.json, tokenizer.json, model.safetensors`);
  });

  it("uses a directory path as it is", async () => {
    const dir = join(cache.dir, "il mio modello è qui");
    mkdirSync(dir);

    expect(await resolveModelReference(dir, { env })).toEqual({ dir });
    expect(await resolveModelReference("./il mio modello è qui", { env, cwd: cache.dir })).toEqual({ dir });
  });

  it("prefers an existing directory named like a repo id", async () => {
    mkdirSync(join(cache.dir, "org", "name"), { recursive: true });

    expect(await resolveModelReference("org/name", { env, cwd: cache.dir })).toEqual({ dir: join(cache.dir, "org", "name") });
  });

  it("reports a missing directory", async () => {
    const failure = await failureOf(resolveModelReference("./missing-model", { env, cwd: cache.dir }));

    expect(failure.message).toContain(`model directory "./missing-model" (${join(cache.dir, "missing-model")}) does not exist`);
    expect(failure.pullCommand).toBeUndefined();
  });

  it("reports a file given as a directory", async () => {
    writeFileSync(join(cache.dir, "config.json"), "{}");

    const failure = await failureOf(resolveModelReference(join(cache.dir, "config.json"), { env }));

    expect(failure.message).toContain("is a file, not a directory");
  });

  it("rejects text that is neither path nor repo id", async () => {
    const failure = await failureOf(resolveModelReference("not a repo", { env, cwd: cache.dir }));

    expect(failure.message).toContain(`model "not a repo" is neither an existing directory nor a Hub repo id`);
  });

  it("sends no request", async () => {
    server.resetCounters();
    await resolveModelReference(repo.id, { env }).catch(() => undefined);

    expect(server.requests).toEqual([]);
  });
});

describe("formatPullCommand", () => {
  it("quotes a revision for the shell", () => {
    expect(formatPullCommand("org/name", "refs/pr/1")).toBe("nesso-mcp pull org/name --revision refs/pr/1");
    expect(formatPullCommand("org/name", "it's")).toBe(`nesso-mcp pull org/name --revision 'it'\\''s'`);
  });
});

describe("ensureModel", () => {
  it("pulls a missing repo after a yes", async () => {
    const questions: string[] = [];

    const reference = await ensureModel(repo.id, {
      env,
      confirmDownload: async (question) => {
        questions.push(question);
        return true;
      },
    });

    expect(questions).toEqual([`${repo.id} is not downloaded yet. Download it from the Hugging Face Hub into ${cache.dir} now?`]);
    expect(reference.commit).toBe(repo.commit);
    expect(server.bytesSent.get("model.safetensors")).toBeGreaterThan(0);
  });

  it("fails with the pull command after a no", async () => {
    server.resetCounters();

    const failure = await failureOf(ensureModel(repo.id, { env, confirmDownload: async () => false }));

    expect(failure.pullCommand).toBe(`nesso-mcp pull ${repo.id}`);
    expect(server.requests).toEqual([]);
  });

  it("fails without asking when nobody can answer", async () => {
    const failure = await failureOf(ensureModel(repo.id, { env }));

    expect(failure.message).toContain(`download it with: nesso-mcp pull ${repo.id}`);
  });

  it("does not offer a pull for a missing directory", async () => {
    let asked = false;

    await failureOf(
      ensureModel("./nowhere", {
        env,
        cwd: cache.dir,
        confirmDownload: async () => {
          asked = true;
          return true;
        },
      }),
    );

    expect(asked).toBe(false);
  });
});
