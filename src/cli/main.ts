#!/usr/bin/env node
// The `nesso-mcp` command. Subcommands load their modules lazily, so `serve` can claim stdout for
// the MCP wire before any dependency (or the native addon) is loaded.

const usage = `Usage: nesso-mcp <command> [options]

Commands:
  run "task"     Run one task with the local model and the tools of mcp.json, stream the answer
  chat           Interactive multi-turn chat with the same tools (Ctrl-C cancels the current turn)
  tools          List the connected servers and tools, with the token cost of each schema
  serve          Serve nesso-mcp itself over MCP (stdio, or Streamable HTTP with --http)
  pull [repo]    Download a model repo into the Hugging Face cache
  convert IN OUT Quantize a checkpoint (MLX affine) or dequantize it
  doctor         Check Node, the native addon, the model and every server of mcp.json

Run "nesso-mcp <command> --help" for the options of a command, "nesso-mcp --version" for the version.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;

  if (command === "serve") {
    // Before anything else is imported: stray console output must not reach the MCP stdio wire.
    const wantsHttp = rest.includes("--http");
    if (!wantsHttp) {
      const { guardStdout } = await import("../server/stdout-guard.js");
      guardStdout();
    }
    const { serveCommand } = await import("./serve.js");
    return serveCommand(rest);
  }

  switch (command) {
    case "run":
      return (await import("./run.js")).runCommand(rest);
    case "chat":
      return (await import("./chat.js")).chatCommand(rest);
    case "tools":
      return (await import("./tools.js")).toolsCommand(rest);
    case "pull":
      return (await import("./pull.js")).pullCommand(rest);
    case "doctor":
      return (await import("./doctor.js")).doctorCommand(rest);
    case "convert":
      return (await import("./convert.js")).convertCommand(rest);
    case "help":
      if (rest[0] !== undefined && rest[0] !== "help") return main([rest[0], "--help"]);
      process.stdout.write(usage);
      return 0;
    case undefined:
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    case "--version":
    case "-v": {
      const { packageVersion } = await import("./version.js");
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    }
    default:
      process.stderr.write(`nesso-mcp: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

/**
 * Lets the process end on its own once the command is done (so piped stdout is flushed), but
 * forces the exit if some handle still keeps the event loop alive after a grace period.
 */
function exitSoon(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 3000).unref();
}

main(process.argv.slice(2)).then(exitSoon, async (error: unknown) => {
  const { reportError } = await import("./report-error.js");
  exitSoon(reportError(error));
});
