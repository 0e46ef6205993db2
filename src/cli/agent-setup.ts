// Setup shared by `run` and `chat`: the model and the servers loaded in parallel, and the agent options
// built from the command line and mcp.json.

import type { ApprovalOptions, ApprovalPolicy } from "../agent/approval.js";
import type { RunAgentOptions } from "../agent/run-agent.js";
import type { Host } from "../host/index.js";
import { createTerminalApprover, type TerminalApprover } from "../agent/terminal-approver.js";
import { integerOption } from "./options.js";
import { UsageError } from "./report-error.js";
import { loadModelFromArguments, type LoadedModel, type ModelArguments } from "./load-model.js";
import { startHost } from "./start-host.js";
import { isInteractive } from "./terminal.js";
import { loadModelGrammars } from "../tool-calling/grammar/model-grammars.js";

export const agentOptions = {
  "max-steps": { type: "string" },
  yes: { type: "boolean", short: "y" },
  "no-grammar": { type: "boolean" },
  system: { type: "string" },
  temperature: { type: "string" },
} as const;

export const agentOptionsHelp = `  --max-steps N         Model turns before the run stops (default 8)
  -y, --yes             Run every tool call without asking
  --no-grammar          Decode tool calls without the JSON Schema grammar (the parser and validation stay)
  --system TEXT         System prompt (default: a short bilingual assistant prompt)
  --temperature T       Sampling temperature for prose (default 0.3; tool calls are always greedy)`;

export interface AgentArguments extends ModelArguments {
  config?: string;
  "max-steps"?: string;
  yes?: boolean;
  "no-grammar"?: boolean;
  system?: string;
  temperature?: string;
}

export interface AgentSetup {
  loaded: LoadedModel;
  host: Host;
  /** Options for runAgent without task, messages, signal and onEvent. */
  options: Omit<RunAgentOptions, "task" | "messages" | "signal" | "onEvent">;
  close(): Promise<void>;
}

/** Loads the model and connects the servers at the same time; on failure nothing is left running. */
export async function setUpAgent(values: AgentArguments): Promise<AgentSetup> {
  const maxSteps = integerOption(values["max-steps"], "max-steps", 1, 100);
  const temperature = values.temperature === undefined ? undefined : Number(values.temperature);
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 2)) {
    throw new UsageError(`--temperature must be a number from 0 to 2, got "${values.temperature}"`);
  }

  const [modelResult, hostResult] = await Promise.allSettled([loadModelFromArguments(values), startHost(values.config)]);
  if (modelResult.status === "rejected" || hostResult.status === "rejected") {
    if (modelResult.status === "fulfilled") modelResult.value.dispose();
    if (hostResult.status === "fulfilled") await hostResult.value.close();
    throw modelResult.status === "rejected" ? modelResult.reason : (hostResult as PromiseRejectedResult).reason;
  }
  const loaded = modelResult.value;
  const host = hostResult.value;

  let approver: TerminalApprover | undefined;
  if (!values.yes && isInteractive()) approver = createTerminalApprover(process.stdin, process.stderr);
  const serverPolicies: Record<string, ApprovalPolicy> = {};
  for (const server of host.config.servers) if (server.approval !== undefined) serverPolicies[server.name] = server.approval;
  const approval: ApprovalOptions = { yes: values.yes === true, serverPolicies, approve: approver?.approve };

  const toolCallConstraint = values["no-grammar"] ? undefined : await loadToolCallGrammar(loaded);

  return {
    loaded,
    host,
    options: {
      model: loaded.chatModel,
      host,
      maxSteps,
      system: values.system,
      sampling: temperature === undefined ? undefined : { temperature },
      approval,
      toolCallConstraint,
    },
    async close() {
      approver?.close();
      await host.close();
      loaded.dispose();
    },
  };
}

/** Loads the grammar that restricts a tool call to an offered tool name and JSON valid for its schema. */
async function loadToolCallGrammar(loaded: LoadedModel): Promise<RunAgentOptions["toolCallConstraint"]> {
  const grammars = await loadModelGrammars(loaded.model.dir, loaded.model.config.vocabSize);
  return (request) => grammars.toolCallConstraint(request);
}
