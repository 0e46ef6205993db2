// A snapshot produced by pullModel is a model directory the engine loads and generates from, with
// the same tokens as the checkpoint directory the test server served.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Model } from "../../src/engine/model.js";
import type { GenerationRecord } from "../../src/engine/types.js";
import { pullModel } from "../../src/hub/pull.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { repoFromDirectory, temporaryDirectory } from "./fixture-repo.js";
import { startHubServer, type FixtureRepo, type HubServer } from "./hub-server.js";

let checkpointDir: string;
let repo: FixtureRepo;
let server: HubServer;
let cache: { dir: string; remove: () => void };

beforeAll(async () => {
  checkpointDir = tinyCheckpoint("F32");
  repo = repoFromDirectory("mii-llm/nesso-tiny-mlx", checkpointDir);
  server = await startHubServer([repo]);
  cache = temporaryDirectory("nesso-hub-model-");
});
afterAll(async () => {
  await server?.close();
  cache?.remove();
});

/** Returns the greedy token ids a model directory generates for an Italian chat prompt. */
async function greedyTokens(dir: string): Promise<{ tokens: number[]; finish: GenerationRecord }> {
  const model = await Model.load(dir, { threads: 1 });
  try {
    const session = model.createSession({ contextSize: 256 });
    const prompt = model.applyChatTemplate([{ role: "user", content: "Ciao! Che tempo fa a Milano? ☀️" }]);
    const records: GenerationRecord[] = [];
    for await (const record of session.generate(prompt, { maxTokens: 8 })) records.push(record);
    const tokens = records.flatMap((record) => (record.kind === "token" ? [record.tokenId] : []));
    return { tokens, finish: records[records.length - 1] };
  } finally {
    model.dispose();
  }
}

describe("pulled snapshot", () => {
  it("loads and generates like the served checkpoint", async () => {
    const pulled = await pullModel({ repo: repo.id, env: { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache.dir } });
    expect(pulled.files.map((file) => file.name).sort()).toEqual(repo.files.map((file) => file.name).sort());

    const fromSnapshot = await greedyTokens(pulled.snapshotDir);
    const fromCheckpoint = await greedyTokens(checkpointDir);

    expect(fromSnapshot.finish.kind).toBe("finish");
    expect(fromSnapshot.tokens.length).toBeGreaterThan(0);
    expect(fromSnapshot.tokens).toEqual(fromCheckpoint.tokens);
  });
});
