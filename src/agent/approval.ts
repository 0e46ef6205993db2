// Decides whether a tool call may run. Tools annotated `readOnlyHint: true` run without asking.
// Any other tool follows the approval policy of its server: `auto` runs it, `deny` rejects it, and
// `ask` asks the user through an approver (the CLI's terminal prompt), or rejects the call when there
// is no one to ask. `yes` (the CLI's --yes) allows everything.
//
// Annotations come from the server and are hints, not guarantees (MCP asks clients to treat them as
// untrusted), so they choose the default policy here and are no security boundary.

import { throwIfAborted } from "../errors.js";
import type { RegisteredTool } from "../host/types.js";

export type ApprovalPolicy = "auto" | "ask" | "deny";

/** The user's answer: run this call, run every call of this tool for the rest of the run, or reject. */
export type ApprovalDecision = "once" | "run" | "deny";

export interface ApprovalRequest {
  tool: RegisteredTool;
  arguments: Record<string, unknown>;
  callId: string;
}

/** Asks the user about one call. */
export type Approver = (request: ApprovalRequest, signal?: AbortSignal) => Promise<ApprovalDecision>;

export interface ApprovalOptions {
  /** Policy for servers without an entry in `serverPolicies` (default "ask"). */
  policy?: ApprovalPolicy;
  /** Policy per server name, from the `approval` key of each server in mcp.json. */
  serverPolicies?: Readonly<Record<string, ApprovalPolicy>>;
  /** Allow every call without asking (the CLI's --yes; default false). */
  yes?: boolean;
  /** Asks the user; leave it out when there is no interactive terminal. */
  approve?: Approver;
}

export interface ApprovalOutcome {
  allowed: boolean;
  /** Why, in words fit for a log line. */
  reason: string;
}

/** Applies the approval rules to the calls of one agent run and remembers "allow for this run". */
export class ApprovalGate {
  private readonly allowedForRun = new Set<string>();

  constructor(private readonly options: ApprovalOptions = {}) {}

  async check(request: ApprovalRequest, signal?: AbortSignal): Promise<ApprovalOutcome> {
    const { tool } = request;
    if (this.options.yes === true) return { allowed: true, reason: "every call is allowed (--yes)" };
    if (tool.annotations?.readOnlyHint === true) return { allowed: true, reason: `${tool.name} is marked read-only` };
    if (this.allowedForRun.has(tool.name)) return { allowed: true, reason: `the user allowed ${tool.name} for this run` };

    const policy = this.options.serverPolicies?.[tool.server] ?? this.options.policy ?? "ask";
    if (policy === "auto") return { allowed: true, reason: `approval is "auto" for server ${tool.server}` };
    if (policy === "deny") return { allowed: false, reason: `approval is "deny" for server ${tool.server}` };

    if (this.options.approve === undefined) {
      return {
        allowed: false,
        reason: `${tool.name} needs approval (approval "ask" for server ${tool.server}) but there is no interactive terminal to ask; set "approval": "auto" for the server or pass --yes`,
      };
    }

    throwIfAborted(signal, `approval of ${tool.name}`);
    const decision = await this.options.approve(request, signal);
    if (decision === "run") {
      this.allowedForRun.add(tool.name);
      return { allowed: true, reason: `the user allowed ${tool.name} for this run` };
    }
    if (decision === "once") return { allowed: true, reason: `the user allowed this call of ${tool.name}` };
    return { allowed: false, reason: `the user denied the call of ${tool.name}` };
  }
}
