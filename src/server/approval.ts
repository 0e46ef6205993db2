// Asks the calling client's user, through MCP elicitation, whether the agent may run a tool that
// needs approval. Without elicitation support on the client, such calls follow the policies of
// mcp.json alone and "ask" means the call is rejected.

import { ElicitResultSchema, type ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";

import type { ApprovalDecision, Approver } from "../agent/approval.js";
import { createLogger } from "../logger.js";
import type { RequestExtra } from "./runtime.js";

const log = createLogger("server");

/** How long the user has to answer one approval question. */
const approvalTimeoutMs = 300_000;

const choices: Record<ApprovalDecision, string> = {
  once: "Allow this call",
  run: "Allow this tool for the rest of the task",
  deny: "Deny",
};

/** Returns an Approver that elicits the decision from the caller, or undefined when the client cannot be asked. */
export function createElicitationApprover(clientCapabilities: ClientCapabilities | undefined, extra: RequestExtra): Approver | undefined {
  const elicitation = clientCapabilities?.elicitation;
  // An empty object is how clients before form and URL modes declared form elicitation.
  if (elicitation === undefined || (elicitation.form === undefined && elicitation.url !== undefined)) return undefined;

  return async (request, signal) => {
    const args = JSON.stringify(request.arguments);
    const message =
      `The local agent wants to call ${request.tool.name} (server ${request.tool.server}) with ${args.length > 500 ? `${args.slice(0, 500)}…` : args}. ` +
      "Allow it?";
    try {
      const result = await extra.sendRequest(
        {
          method: "elicitation/create",
          params: {
            mode: "form",
            message,
            requestedSchema: {
              type: "object",
              properties: {
                decision: {
                  type: "string",
                  title: "Decision",
                  oneOf: (Object.keys(choices) as ApprovalDecision[]).map((value) => ({ const: value, title: choices[value] })),
                },
              },
              required: ["decision"],
            },
          },
        },
        ElicitResultSchema,
        { signal, timeout: approvalTimeoutMs },
      );
      if (result.action !== "accept") return "deny";
      const decision = result.content?.decision;
      return decision === "once" || decision === "run" ? decision : "deny";
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      log.warn(`asking the client to approve ${request.tool.name} failed; the call is denied`, error);
      return "deny";
    }
  };
}
