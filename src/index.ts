// The nesso-mcp library: the engine, the MCP host, the agent loop and the MCP server, for programs
// that embed them instead of running the `nesso-mcp` command.

export * from "./engine/index.js";
export { Host, loadConfig, parseConfig, type HostOptions } from "./host/index.js";
export type { RegisteredTool, ToolExecutor, CallToolOptions } from "./host/types.js";
export { runAgent, type RunAgentOptions } from "./agent/run-agent.js";
export type { AgentEvent, AgentResult, AgentFinishReason } from "./agent/events.js";
export { startServer, type StartServerOptions, type RunningServer } from "./server/index.js";
export { pullModel, resolveModelReference, type PullOptions, type PullResult } from "./hub/index.js";
export { loadModelGrammars, type ModelGrammars } from "./tool-calling/grammar/model-grammars.js";
export { NessoError, DisposedError, type NessoErrorCode } from "./errors.js";
export { createLogger, setLogLevel, LogLevel } from "./logger.js";
