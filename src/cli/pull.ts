// `nesso-mcp pull [repo] [--revision REV]`: downloads a model into the Hugging Face cache.

import { createProgressReporter, defaultRepo, pullModel } from "../hub/index.js";
import { commonOptions, commonOptionsHelp, parseCommand } from "./options.js";

const help = `Usage: nesso-mcp pull [repo] [options]

Downloads the files the engine needs (config, weights, tokenizer, chat template) into the
Hugging Face cache, where mlx-lm and huggingface-cli find them too. An interrupted pull resumes.

  repo                  Hub repo id (default ${defaultRepo})
  --revision REV        Branch, tag or commit (default main)
  --cache-dir DIR       Cache directory (default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)
${commonOptionsHelp}

Environment: HF_TOKEN (gated repos), HF_ENDPOINT (mirror), HF_HUB_OFFLINE=1 (cache only).
`;

export async function pullCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("pull", argv, { ...commonOptions, revision: { type: "string" }, "cache-dir": { type: "string" } }, true);
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const repo = positionals[0] ?? defaultRepo;
  const reporter = createProgressReporter(process.stderr);
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error("pull was interrupted (run the same command again to resume)"));
  process.once("SIGINT", onSignal);
  try {
    const result = await pullModel({ repo, revision: values.revision, cacheDir: values["cache-dir"], signal: abort.signal, onProgress: reporter.onProgress });
    const downloaded = result.files.filter((file) => file.downloaded).length;
    process.stderr.write(`${result.repo}@${result.commit.slice(0, 12)}: ${downloaded} of ${result.files.length} files downloaded\n`);
    process.stdout.write(`${result.snapshotDir}\n`);
    return 0;
  } finally {
    reporter.close();
    process.off("SIGINT", onSignal);
  }
}
