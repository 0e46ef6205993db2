import { PassThrough } from "node:stream";

import { describe, expect, it } from "vitest";

import { ApprovalGate, type ApprovalRequest } from "../../src/agent/approval.js";
import { createTerminalApprover, parseApprovalAnswer } from "../../src/agent/terminal-approver.js";
import type { RegisteredTool } from "../../src/host/types.js";

function tool(overrides: Partial<RegisteredTool> = {}): RegisteredTool {
  return {
    name: "write_file",
    server: "filesystem",
    originalName: "write_file",
    inputSchema: { type: "object" },
    annotations: { readOnlyHint: false, destructiveHint: true },
    ...overrides,
  };
}

function request(overrides: Partial<RegisteredTool> = {}, args: Record<string, unknown> = { path: "città.txt" }): ApprovalRequest {
  return { tool: tool(overrides), arguments: args, callId: "call_1_1" };
}

describe("ApprovalGate", () => {
  it("allows read-only tools without asking", async () => {
    const gate = new ApprovalGate({ policy: "deny", approve: async () => "deny" });
    const outcome = await gate.check(request({ annotations: { readOnlyHint: true } }));
    expect(outcome.allowed).toBe(true);
    expect(outcome.reason).toContain("read-only");
  });

  it("asks for tools without annotations", async () => {
    let asked = 0;
    const gate = new ApprovalGate({ approve: async () => (asked++, "once") });
    expect((await gate.check(request({ annotations: undefined }))).allowed).toBe(true);
    expect(asked).toBe(1);
  });

  it("prefers the server policy over the default", async () => {
    const gate = new ApprovalGate({ policy: "deny", serverPolicies: { filesystem: "auto" } });
    expect((await gate.check(request())).allowed).toBe(true);
    expect((await gate.check(request({ server: "other" }))).allowed).toBe(false);
  });

  it("remembers allow for this run per tool", async () => {
    const answers = ["run", "deny"] as const;
    let asked = 0;
    const gate = new ApprovalGate({ approve: async () => answers[asked++] });

    expect((await gate.check(request())).allowed).toBe(true);
    expect((await gate.check(request())).allowed).toBe(true);
    expect((await gate.check(request({ name: "move_file" }))).allowed).toBe(false);
    expect(asked).toBe(2);
  });

  it("denies ask without an approver", async () => {
    const outcome = await new ApprovalGate().check(request());
    expect(outcome.allowed).toBe(false);
    expect(outcome.reason).toContain("no interactive terminal");
    expect(outcome.reason).toContain("--yes");
  });

  it("allows everything with yes", async () => {
    const outcome = await new ApprovalGate({ policy: "deny", yes: true }).check(request());
    expect(outcome.allowed).toBe(true);
  });
});

describe("terminal approver", () => {
  it.each([
    ["o", "once"],
    ["Once", "once"],
    ["sì", "once"],
    ["r", "run"],
    [" RUN ", "run"],
    ["d", "deny"],
    ["", "deny"],
    ["forse", "deny"],
  ])("reads %j as %s", (line, decision) => {
    expect(parseApprovalAnswer(line)).toBe(decision);
  });

  it("prompts and reads one answer per call", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = "";
    output.on("data", (chunk: Buffer) => (shown += chunk.toString("utf8")));
    const approver = createTerminalApprover(input, output);

    input.write("o\nr\n");
    const first = await approver.approve(request({}, { path: "città.txt", content: "perché 😀" }));
    const second = await approver.approve(request());
    const pending = approver.approve(request());
    input.write("d\n");
    const third = await pending;
    approver.close();

    expect([first, second, third]).toEqual(["once", "run", "deny"]);
    expect(shown).toContain("The model wants to call write_file on server filesystem (destructive) with:");
    expect(shown).toContain('"content": "perché 😀"');
    expect(shown).toContain("Allow? [o]nce, for this [r]un, [d]eny (default deny): ");
  });

  it("denies when the input ends", async () => {
    const input = new PassThrough();
    const approver = createTerminalApprover(input, new PassThrough());
    const pending = approver.approve(request());
    input.end();
    expect(await pending).toBe("deny");
    expect(await approver.approve(request())).toBe("deny");
  });

  it("cuts long arguments in the prompt", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = "";
    output.on("data", (chunk: Buffer) => (shown += chunk.toString("utf8")));
    const approver = createTerminalApprover(input, output);

    input.write("d\n");
    await approver.approve(request({}, { content: "è".repeat(5000) }));
    approver.close();

    expect(shown).toMatch(/… \(\d+ characters in total\)/);
    expect(shown.length).toBeLessThan(1000);
  });

  it("rejects with the abort reason while waiting", async () => {
    const approver = createTerminalApprover(new PassThrough(), new PassThrough());
    const controller = new AbortController();
    const reason = new Error("user pressed Ctrl-C");
    const pending = approver.approve(request(), controller.signal);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    approver.close();
    approver.close();
  });
});
