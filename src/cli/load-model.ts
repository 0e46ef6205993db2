// Resolves `--model` and loads it into the engine, offering a download on a terminal.

import { EngineChatModel, Model, promptCacheEnabled } from "../engine/index.js";
import { createProgressReporter, ensureModel } from "../hub/index.js";
import { confirm, isInteractive } from "./terminal.js";
import { integerOption } from "./options.js";

export interface ModelArguments {
  model?: string;
  revision?: string;
  threads?: string;
  "context-size"?: string;
}

export interface LoadedModel {
  model: Model;
  chatModel: EngineChatModel;
  dispose(): void;
}

/**
 * Finds the model (directory or cached repo), downloads it after a yes on a terminal, loads it and
 * opens one session. Without a terminal a missing model is an error that gives the pull command.
 */
export async function loadModelFromArguments(values: ModelArguments, signal?: AbortSignal): Promise<LoadedModel> {
  const threads = integerOption(values.threads, "threads", 1, 256);
  const contextSize = integerOption(values["context-size"], "context-size", 16);
  const reporter = createProgressReporter(process.stderr);
  try {
    const reference = await ensureModel(values.model, {
      revision: values.revision,
      confirmDownload: isInteractive() ? (question) => confirm(question) : undefined,
      pull: { onProgress: reporter.onProgress, signal },
    });
    // The system turn (prompt and tool schemas) is saved to the on-disk prompt cache, so the next
    // run with the same tools skips its prefill. NESSO_MCP_PROMPT_CACHE=0 turns that off.
    const model = await Model.load(reference.dir, { threads, signal, promptCache: promptCacheEnabled() });
    const chatModel = new EngineChatModel(model, { contextSize });
    return {
      model,
      chatModel,
      dispose: () => {
        chatModel.dispose();
        model.dispose();
      },
    };
  } finally {
    reporter.close();
  }
}
