// The agent tool with the real agent loop and the official memory server, and a scripted stand-in
// for the model's text (a random-weight model never writes a tool call). Approval of a tool that
// is not read-only goes to the calling client through elicitation.

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ElicitRequestSchema, type CallToolResult, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";

import { Host, loadConfig } from "../../src/host/index.js";
import { runAgentForServer } from "../../src/server/agent-adapter.js";
import { createNessoServer } from "../../src/server/mcp-server.js";
import { ServerRuntime } from "../../src/server/runtime.js";
import { removeConfig, writeMemoryConfig } from "./acceptance.js";
import { scriptedModel } from "./scripted-model.js";

const toolCall =
  '<tool_call>\n{"name": "create_entities", "arguments": {"entities": [{"name": "Marco", "entityType": "persona", "observations": ["ama il caffè ☕"]}]}}\n</tool_call>';

/**
 * Writes the tool call in the first turn and the answer once a tool result is in the prompt. The
 * agent loop may stop a generation when a call opens and continue from the text so far, so the
 * reply is the rest of the turn after what the prompt's last assistant turn already holds.
 */
function continueTurn(prompt: string): string {
  // The scripted model renders a tool message as a plain "tool" turn.
  const turn = prompt.includes("<|im_start|>tool\n") ? "Fatto: ho salvato Marco." : toolCall;
  const written = prompt.slice(prompt.lastIndexOf("<|im_start|>assistant\n") + "<|im_start|>assistant\n".length);
  return turn.startsWith(written) ? turn.slice(written.length) : turn;
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Connects a client whose user answers approval questions with `answer` (no elicitation when undefined). */
async function connect(answer: ElicitResult | undefined) {
  const { configPath, dir } = writeMemoryConfig();
  const model = scriptedModel({ reply: continueTurn });
  const host = new Host(loadConfig({ configPath }));
  const runtime = new ServerRuntime(
    {
      loadModel: async () => ({
        chatModel: model,
        info: { path: "/models/scripted", config: {}, quantization: "none", contextSize: 4096, threads: 1 },
        dispose: () => undefined,
      }),
      host,
      runAgent: runAgentForServer,
    },
    { queueHeartbeatMs: 0 },
  );
  const server = createNessoServer(runtime);

  const client = new Client({ name: "agent-test", version: "1.0.0" }, { capabilities: answer === undefined ? {} : { elicitation: { form: {} } } });
  const questions: string[] = [];
  if (answer !== undefined) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      questions.push(request.params.message);
      return answer;
    });
  }

  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  cleanups.push(async () => {
    await client.close();
    await server.close();
    await runtime.close();
    removeConfig(dir);
  });

  const memoryFile = join(dir, "memory.jsonl");
  return { client, questions, memoryFile };
}

async function runTask(client: Client) {
  const result = (await client.callTool({ name: "agent", arguments: { task: "Ricorda che Marco ama il caffè.", max_steps: 3 } }, undefined, { timeout: 60_000 })) as CallToolResult;
  return { result, output: result.structuredContent as { answer: string; finish_reason: string; steps: { tool: string; arguments: unknown; result_summary: string; is_error: boolean }[] } };
}

describe("agent tool", () => {
  it("runs an approved call and reports the step", async () => {
    const { client, questions, memoryFile } = await connect({ action: "accept", content: { decision: "once" } });
    const { result, output } = await runTask(client);
    expect(result.isError).toBeFalsy();
    expect(output.answer).toBe("Fatto: ho salvato Marco.");
    expect(output.finish_reason).toBe("answer");
    expect(output.steps).toHaveLength(1);
    expect(output.steps[0]).toMatchObject({ tool: "create_entities", is_error: false });
    expect(output.steps[0].result_summary).toContain("Marco");
    expect(questions).toHaveLength(1);
    expect(questions[0]).toMatch(/wants to call create_entities \(server memoria\)/);
    expect(readFileSync(memoryFile, "utf8")).toContain("ama il caffè ☕");
  });

  it("denies a call the user declines", async () => {
    const { client, questions, memoryFile } = await connect({ action: "decline" });
    const { output } = await runTask(client);
    expect(questions).toHaveLength(1);
    expect(output.steps).toHaveLength(1);
    expect(output.steps[0].is_error).toBe(true);
    expect(output.steps[0].result_summary).toMatch(/denied/);
    expect(existsSync(memoryFile) ? readFileSync(memoryFile, "utf8") : "").not.toContain("Marco");
  });

  it("denies without elicitation support", async () => {
    const { client, memoryFile } = await connect(undefined);
    const { output } = await runTask(client);
    expect(output.steps[0].is_error).toBe(true);
    expect(output.steps[0].result_summary).toMatch(/needs approval/);
    expect(existsSync(memoryFile) ? readFileSync(memoryFile, "utf8") : "").not.toContain("Marco");
    rmSync(memoryFile, { force: true });
  });
});
