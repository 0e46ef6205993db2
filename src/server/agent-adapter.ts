// Runs src/agent's loop for the `agent` tool and reports its tool calls as steps.

import type { ApprovalOptions } from "../agent/approval.js";
import type { AgentEvent as LoopEvent } from "../agent/events.js";
import { defaultSystemPrompt, runAgent } from "../agent/run-agent.js";
import type { AgentRunRequest, AgentRunResult, AgentStep } from "./agent-runner.js";

/** Characters of a tool result kept in a step's summary. */
const summaryChars = 400;

const languageInstructions = {
  auto: "",
  it: " Always write your final answer in Italian.",
  en: " Always write your final answer in English.",
} as const;

/** Runs runAgent for the agent tool; approval follows the request (policies of mcp.json, the caller's elicitation). */
export async function runAgentForServer(request: AgentRunRequest): Promise<AgentRunResult> {
  const steps = new Map<string, AgentStep>();

  const onEvent = (event: LoopEvent) => {
    switch (event.type) {
      case "tool_call":
        steps.set(event.call.id, { tool: event.call.name, arguments: event.call.arguments, resultSummary: "(not run)", isError: false });
        request.onEvent({ type: "status", message: `step ${event.step}: calling ${event.call.name}` });
        break;
      case "tool_result": {
        const step = steps.get(event.callId);
        if (step === undefined) break;
        step.resultSummary = summarize(event.content);
        step.isError = event.isError;
        request.onEvent({ type: "step", step });
        break;
      }
      case "error": {
        const step = event.callId === undefined ? undefined : steps.get(event.callId);
        if (step === undefined) break;
        step.resultSummary = summarize(event.message);
        step.isError = true;
        request.onEvent({ type: "step", step });
        break;
      }
      case "text":
        request.onEvent({ type: "status", message: `step ${event.step}: writing` });
        break;
      default:
        break;
    }
  };

  const approval: ApprovalOptions = { serverPolicies: request.serverPolicies, approve: request.approve };
  const result = await runAgent({
    task: request.task,
    system: defaultSystemPrompt + languageInstructions[request.language],
    model: request.model,
    host: request.host,
    maxSteps: request.maxSteps,
    signal: request.signal,
    onEvent,
    approval,
    toolCallConstraint: request.grammars === undefined ? undefined : (constraintRequest) => request.grammars!.toolCallConstraint(constraintRequest),
  });
  return {
    answer: result.text,
    steps: [...steps.values()],
    finishReason: result.finishReason === "stop" ? "answer" : result.finishReason,
  };
}

function summarize(text: string): string {
  const characters = [...text];
  return characters.length <= summaryChars ? text : `${characters.slice(0, summaryChars).join("")}…`;
}
