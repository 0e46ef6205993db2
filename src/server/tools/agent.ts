// The `agent` tool: a task for the local model, which may call the tools of the servers in mcp.json
// until it writes its final reply.

import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

import { NessoError } from "../../errors.js";
import type { CallToolOptions, RegisteredTool, ToolExecutor } from "../../host/types.js";
import type { ApprovalPolicy } from "../../agent/approval.js";
import type { AgentRunResult } from "../agent-runner.js";
import { createElicitationApprover } from "../approval.js";
import type { ServerRuntime } from "../runtime.js";
import { errorResult, structuredResult } from "../tool-result.js";

const inputShape = {
  task: z.string().min(1).describe("What to do, in Italian or English, as you would ask a person."),
  servers: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe("Names of the configured servers whose tools the agent may use (default: all). Read nesso://servers for the names."),
  max_steps: z.number().int().min(1).max(50).optional().describe("Maximum tool calls before the agent must answer (default 8)."),
  language: z.enum(["auto", "it", "en"]).optional().describe('Language of the answer: "it", "en", or "auto" to follow the task (default).'),
};

const stepShape = z.object({
  tool: z.string(),
  arguments: z.record(z.string(), z.unknown()),
  result_summary: z.string().describe("The start of the tool's result, or its error."),
  is_error: z.boolean(),
});

const outputShape = {
  answer: z.string().describe("The agent's final answer."),
  steps: z.array(stepShape).describe("The tool calls made, in order."),
  finish_reason: z.string().describe('"answer" when the model answered; otherwise why it stopped, e.g. "max_steps".'),
};

export type AgentArguments = z.infer<z.ZodObject<typeof inputShape>>;

export function registerAgentTool(server: McpServer, runtime: ServerRuntime): void {
  server.registerTool(
    "agent",
    {
      title: "Run a task with the local agent",
      description:
        "Hands a task to Nesso-0.4B, a small local Italian/English model that can call the tools of the MCP servers configured for nesso-mcp " +
        "(files, fetch, memory, …; read nesso://servers for the list). Returns the answer and every tool call it made. " +
        "Best for short, concrete tasks that need one to a few tool calls; describe the task plainly and name files or URLs exactly. " +
        "Tools may change files if the configured servers allow it.",
      inputSchema: inputShape,
      outputSchema: outputShape,
      annotations: { title: "Run a task with the local agent", readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, extra) => {
      const runAgent = runtime.runAgent;
      if (runAgent === undefined) return errorResult("agent", "this server was started without the agent loop, so only generate and extract are available", extra.requestId);
      try {
        await runtime.startHost();
        const tools = selectServers(runtime.host ?? emptyExecutor, args.servers);
        const result = await runtime.runRequest("agent", extra, async (context) =>
          runAgent({
            grammars: await runtime.models.grammars(),
            task: args.task,
            model: context.model,
            host: tools,
            maxSteps: args.max_steps ?? runtime.agentMaxSteps,
            language: args.language ?? "auto",
            signal: context.signal,
            serverPolicies: approvalPolicies(runtime),
            approve: createElicitationApprover(server.server.getClientCapabilities(), extra),
            onEvent: (event) => {
              if (event.type === "step") {
                const { step } = event;
                context.progress.advance(1, `called ${step.tool}${step.isError ? " (error)" : ""}`);
              } else {
                context.progress.setStatus(event.message);
              }
            },
          }),
        );
        return agentResult(result);
      } catch (error) {
        return errorResult("agent", error, extra.requestId);
      }
    },
  );
}

/** Collects the `approval` key of each server in mcp.json. */
function approvalPolicies(runtime: ServerRuntime): Record<string, ApprovalPolicy> {
  const policies: Record<string, ApprovalPolicy> = {};
  for (const server of runtime.host?.config?.servers ?? []) {
    if (server.approval !== undefined) policies[server.name] = server.approval;
  }
  return policies;
}

function agentResult(result: AgentRunResult): CallToolResult {
  const data = {
    answer: result.answer,
    steps: result.steps.map((step) => ({ tool: step.tool, arguments: step.arguments, result_summary: step.resultSummary, is_error: step.isError })),
    finish_reason: result.finishReason,
  };
  const stepLines = data.steps.map((step, index) => `${index + 1}. ${step.tool}(${JSON.stringify(step.arguments)})${step.is_error ? " failed" : ""}: ${step.result_summary}`);
  const text = stepLines.length === 0 ? result.answer : `${result.answer}\n\nSteps:\n${stepLines.join("\n")}`;
  return structuredResult(data, text);
}

const emptyExecutor: ToolExecutor = {
  listTools: () => [],
  callTool: (name) => Promise.reject(new NessoError("INVALID_ARGUMENT", `tools/call: unknown tool "${name}" (no servers are configured)`)),
};

/**
 * Restricts the host to the tools of the named servers. An unknown name is an error that lists
 * the configured servers, so the caller can correct it.
 */
export function selectServers(host: ToolExecutor & { servers?: () => { name: string }[] }, names: string[] | undefined): ToolExecutor {
  if (names === undefined) return host;
  const known = host.servers?.().map((server) => server.name) ?? [...new Set(host.listTools().map((tool) => tool.server))];
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    const listed = known.length === 0 ? "no servers are configured" : `configured servers: ${known.join(", ")}`;
    const quoted = unknown.map((name) => `"${name}"`).join(", ");
    throw new NessoError("INVALID_ARGUMENT", `servers: unknown server ${quoted} (${listed}); use the names listed in nesso://servers`);
  }
  const allowed = new Set(names);
  const visible = (tool: RegisteredTool) => allowed.has(tool.server);
  return {
    listTools: () => host.listTools().filter(visible),
    callTool: (name: string, toolArgs: Record<string, unknown>, options?: CallToolOptions) => {
      const tool = host.listTools().find((candidate) => candidate.name === name);
      if (tool !== undefined && !visible(tool)) {
        return Promise.reject(new NessoError("INVALID_ARGUMENT", `tools/call: tool "${name}" belongs to server "${tool.server}", which this task may not use (allowed: ${names.join(", ")})`));
      }
      return host.callTool(name, toolArgs, options);
    },
  };
}
