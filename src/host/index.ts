// Public surface of the host layer.

export { Host, type HostOptions } from "./host.js";
export {
  configSearchPaths,
  findConfigFile,
  loadConfig,
  parseConfig,
  type ApprovalPolicy,
  type HostConfig,
  type HttpServerConfig,
  type ServerConfig,
  type StdioServerConfig,
} from "./config.js";
export type { RestartPolicy, ServerState, ServerStatus } from "./connection.js";
export type { ElicitationHandler, SamplingHandler } from "./session.js";
export type { CallToolOptions, RegisteredTool, ToolExecutor } from "./types.js";
