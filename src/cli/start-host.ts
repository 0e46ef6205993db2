// Loads mcp.json and connects its servers for a CLI command, reporting the ones that failed.

import { Host, loadConfig, type HostOptions } from "../host/index.js";
import { createLogger } from "../logger.js";

const log = createLogger("cli");

/** Reads the config (`--config`, ./mcp.json, user config dir), starts every server, warns about failures. */
export async function startHost(configPath: string | undefined, options: HostOptions & { signal?: AbortSignal } = {}): Promise<Host> {
  const config = loadConfig({ configPath });
  if (config.path === undefined) log.warn("no mcp.json found (looked in ./mcp.json and the user config directory); running without tools");
  else log.info(`using ${config.path}`);
  const host = new Host(config, options);
  try {
    // The host itself logs each server that fails to start, with its stderr.
    await host.start({ signal: options.signal });
  } catch (error) {
    await host.close();
    throw error;
  }
  return host;
}
