// mcp.json: lookup order, validation errors with JSON paths, variable expansion and entry kinds.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { NessoError } from "../../src/errors.js";
import { configSearchPaths, findConfigFile, loadConfig, parseConfig, type HttpServerConfig, type StdioServerConfig } from "../../src/host/config.js";
import { expandVariables } from "../../src/host/expand.js";
import { makeTempDir } from "./helpers/processes.js";

let temp: { path: string; remove: () => void };

beforeAll(() => {
  temp = makeTempDir("config");
});

afterAll(() => temp.remove());

function configError(text: string, env: NodeJS.ProcessEnv = {}): NessoError {
  try {
    parseConfig(text, { path: "/etc/nesso/mcp.json", env });
  } catch (error) {
    expect(error).toBeInstanceOf(NessoError);
    expect((error as NessoError).code).toBe("CONFIG");
    return error as NessoError;
  }
  throw new Error("parseConfig accepted an invalid configuration");
}

function writeConfig(dir: string, servers: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "mcp.json");
  writeFileSync(path, JSON.stringify({ mcpServers: servers }));
  return path;
}

describe("config lookup", () => {
  it("prefers --config, then ./mcp.json, then the user directory", () => {
    const root = join(temp.path, "lookup");
    const cwd = join(root, "project");
    const home = join(root, "home");
    const explicit = writeConfig(join(root, "explicit"), { a: { command: "a" } });
    const local = writeConfig(cwd, { b: { command: "b" } });
    const user = writeConfig(join(home, ".config", "nesso-mcp"), { c: { command: "c" } });
    const env = {};

    expect(findConfigFile({ configPath: explicit, cwd, homeDir: home, env }).path).toBe(explicit);
    expect(findConfigFile({ cwd, homeDir: home, env }).path).toBe(local);
    expect(findConfigFile({ cwd: join(root, "elsewhere"), homeDir: home, env }).path).toBe(user);
    expect(findConfigFile({ cwd: join(root, "elsewhere"), homeDir: join(root, "nobody"), env }).path).toBeUndefined();
  });

  it("uses XDG_CONFIG_HOME for the user directory", () => {
    const xdg = join(temp.path, "xdg");
    const path = writeConfig(join(xdg, "nesso-mcp"), { x: { command: "x" } });

    const found = findConfigFile({ cwd: join(temp.path, "none"), homeDir: join(temp.path, "home-x"), env: { XDG_CONFIG_HOME: xdg } });
    expect(found.path).toBe(path);
  });

  it("searches Application Support on macOS", () => {
    const paths = configSearchPaths({ cwd: "/work", homeDir: "/Users/anna", env: {}, platform: "darwin" });

    expect(paths).toEqual(["/work/mcp.json", "/Users/anna/.config/nesso-mcp/mcp.json", "/Users/anna/Library/Application Support/nesso-mcp/mcp.json"]);
  });

  it("rejects a missing --config file", () => {
    expect(() => findConfigFile({ configPath: "missing.json", cwd: temp.path })).toThrow(/missing\.json given with --config does not exist/);
  });

  it("loads no servers when no file exists", () => {
    const config = loadConfig({ cwd: join(temp.path, "empty"), homeDir: join(temp.path, "empty-home"), env: {} });

    expect(config).toEqual({ servers: [] });
  });

  it("reads the repository's example mcp.json", () => {
    const config = loadConfig({ configPath: join(import.meta.dirname, "..", "..", "mcp.json"), env: {} });
    const names = config.servers.map((server) => server.name);

    expect(names).toEqual(["filesystem", "fetch"]);
    const filesystem = config.servers[0] as StdioServerConfig;
    expect(filesystem.command).toBe("npx");
    expect(filesystem.args).toEqual(["-y", "@modelcontextprotocol/server-filesystem", "."]);
  });
});

describe("config validation", () => {
  it("names the JSON path of invalid values", () => {
    const error = configError(JSON.stringify({ mcpServers: { files: { command: "npx", args: ["-y", 42] }, web: { url: "http://x", headers: { a: true } } } }));

    expect(error.message).toContain("/etc/nesso/mcp.json is invalid");
    expect(error.message).toContain("mcpServers.files.args[1]: Invalid input: expected string, received number");
    expect(error.message).toContain("mcpServers.web.headers.a: Invalid input: expected string, received boolean");
  });

  it("quotes server names that are not identifiers", () => {
    const error = configError(JSON.stringify({ mcpServers: { "my server": { command: "" } } }));

    expect(error.message).toContain('mcpServers["my server"].command');
  });

  it("rejects entries without command or url", () => {
    const error = configError(JSON.stringify({ mcpServers: { empty: { args: [] } } }));

    expect(error.message).toContain('mcpServers.empty: needs "command"');
  });

  it("rejects entries with both command and url", () => {
    const error = configError(JSON.stringify({ mcpServers: { both: { command: "x", url: "http://x" } } }));

    expect(error.message).toContain('mcpServers.both: has both "command" and "url"');
  });

  it("rejects a file without mcpServers", () => {
    const error = configError(JSON.stringify({ servers: {} }));

    expect(error.message).toContain("mcpServers: Invalid input");
  });

  it("reports JSON syntax errors with line and column", () => {
    const error = configError('{\n  "mcpServers": {\n    "a": { "command": "x", }\n  }\n}');

    expect(error.message).toMatch(/is not valid JSON at line 3, column \d+/);
  });

  it("validates our optional keys", () => {
    const error = configError(JSON.stringify({ mcpServers: { a: { command: "x", timeoutMs: -5, approval: "sometimes", includeTools: "echo" } } }));

    expect(error.message).toContain("mcpServers.a.timeoutMs");
    expect(error.message).toContain("mcpServers.a.approval");
    expect(error.message).toContain("mcpServers.a.includeTools");
  });

  it("accepts every optional key", () => {
    const config = parseConfig(
      JSON.stringify({
        mcpServers: {
          a: { command: "x", disabled: false, includeTools: ["read_*"], excludeTools: ["read_media_file"], timeoutMs: 5000, approval: "deny" },
        },
      }),
    );

    expect(config.servers[0]).toMatchObject({ includeTools: ["read_*"], excludeTools: ["read_media_file"], timeoutMs: 5000, approval: "deny", disabled: false });
  });
});

describe("config entries", () => {
  it("parses stdio entries with defaults", () => {
    const config = parseConfig(JSON.stringify({ mcpServers: { fs: { command: "npx" } } }), { path: "/etc/nesso/mcp.json" });

    expect(config.path).toBe("/etc/nesso/mcp.json");
    expect(config.servers).toEqual([{ name: "fs", type: "stdio", command: "npx", args: [], env: {}, cwd: undefined, disabled: false, includeTools: undefined, excludeTools: undefined, timeoutMs: undefined, approval: undefined }]);
  });

  it("resolves a relative cwd against the config file", () => {
    const config = parseConfig(JSON.stringify({ mcpServers: { fs: { command: "npx", cwd: "data" } } }), { path: "/etc/nesso/mcp.json" });

    expect((config.servers[0] as StdioServerConfig).cwd).toBe("/etc/nesso/data");
  });

  it("parses http and sse entries", () => {
    const config = parseConfig(
      JSON.stringify({
        mcpServers: {
          auto: { url: "http://127.0.0.1:3000/mcp" },
          streamable: { url: "https://example.com/mcp", type: "http", headers: { Authorization: "Bearer x" } },
          legacy: { url: "http://127.0.0.1:3001/sse", type: "sse" },
        },
      }),
    );
    const [auto, streamable, legacy] = config.servers as HttpServerConfig[];

    expect(auto).toMatchObject({ type: "http", sseFallback: true, headers: {} });
    expect(streamable).toMatchObject({ type: "http", sseFallback: false, headers: { Authorization: "Bearer x" } });
    expect(legacy).toMatchObject({ type: "sse", sseFallback: false });
  });

  it("rejects urls that are not http", () => {
    const error = configError(JSON.stringify({ mcpServers: { files: { url: "file:///etc/passwd" } } }));

    expect(error.message).toContain('server "files", field url: scheme file: is not supported');
  });

  it("resolves roots or turns them off", () => {
    const config = parseConfig(
      JSON.stringify({ mcpServers: { a: { command: "x", roots: ["docs", "${HOME}/note"] }, b: { command: "y", roots: false } } }),
      { path: "/etc/nesso/mcp.json", env: { HOME: "/home/anna" } },
    );

    expect(config.servers[0].roots).toEqual(["/etc/nesso/docs", "/home/anna/note"]);
    expect(config.servers[1].roots).toBe(false);
  });

  it("keeps disabled entries unexpanded", () => {
    const config = parseConfig(JSON.stringify({ mcpServers: { off: { command: "${NOT_SET}", disabled: true } } }), { env: {} });

    expect(config.servers[0]).toMatchObject({ disabled: true, command: "${NOT_SET}" });
  });
});

describe("variable expansion", () => {
  const env = { HOME: "/home/anna", TOKEN: "s3cr3t", EMPTY: "", CITTÀ: "no" };

  it("expands command, args, env, url and headers", () => {
    const config = parseConfig(
      JSON.stringify({
        mcpServers: {
          local: { command: "${HOME}/bin/server", args: ["--root", "${HOME}/progetti", "${PORT:-8080}"], env: { API_KEY: "${TOKEN}" } },
          remote: { url: "http://127.0.0.1:${PORT:-3000}/mcp", headers: { Authorization: "Bearer ${env:TOKEN}" } },
        },
      }),
      { env },
    );
    const [local, remote] = config.servers as [StdioServerConfig, HttpServerConfig];

    expect(local.command).toBe("/home/anna/bin/server");
    expect(local.args).toEqual(["--root", "/home/anna/progetti", "8080"]);
    expect(local.env).toEqual({ API_KEY: "s3cr3t" });
    expect(remote.url).toBe("http://127.0.0.1:3000/mcp");
    expect(remote.headers).toEqual({ Authorization: "Bearer s3cr3t" });
  });

  it("names the server and field of an unset variable", () => {
    const error = configError(JSON.stringify({ mcpServers: { github: { command: "gh-mcp", env: { GITHUB_TOKEN: "${GITHUB_TOKEN}" } } } }), env);

    expect(error.message).toBe(
      'mcp.json server "github", field env.GITHUB_TOKEN: environment variable GITHUB_TOKEN is not set and has no default ' +
        "(set GITHUB_TOKEN, or write ${GITHUB_TOKEN:-default})",
    );
  });

  it("names the argument index of an unset variable", () => {
    const error = configError(JSON.stringify({ mcpServers: { fs: { command: "npx", args: ["-y", "${MISSING_DIR}"] } } }), env);

    expect(error.message).toContain('server "fs", field args[1]: environment variable MISSING_DIR is not set');
  });

  it("handles defaults, empty values and escapes", () => {
    const where = { server: "s", field: "args[0]" };

    expect(expandVariables("${UNSET:-fallback}", env, where)).toBe("fallback");
    expect(expandVariables("${EMPTY:-fallback}", env, where)).toBe("fallback");
    expect(expandVariables("[${EMPTY}]", env, where)).toBe("[]");
    expect(expandVariables("${UNSET:-}", env, where)).toBe("");
    expect(expandVariables("$${HOME} costs $5", env, where)).toBe("${HOME} costs $5");
    expect(expandVariables("${HOME}${HOME}", env, where)).toBe("/home/anna/home/anna");
    expect(expandVariables("caffè ☕ ${TOKEN}", env, where)).toBe("caffè ☕ s3cr3t");
  });

  it("rejects invalid variable names", () => {
    expect(() => expandVariables("${CITTÀ}", env, { server: "s", field: "command" })).toThrow('"${CITTÀ}" is not a valid variable reference');
    expect(() => expandVariables("${}", env, { server: "s", field: "command" })).toThrow("is not a valid variable reference");
  });
});
