// Child process of the prompt cache tests. It prints one JSON line on stdout.
//
//   generate --model DIR --cache DIR --user TEXT
//     Runs one chat turn through EngineChatModel with the prompt cache on and prints the tokens,
//     the finish record and the cache counters.
//   write --cache DIR --count N
//     Stores the entry of syntheticEntry() N times and prints the write count.

import { parseArgs } from "node:util";
import { EngineChatModel } from "../../src/engine/chat-model.js";
import { Model } from "../../src/engine/model.js";
import { PromptCache } from "../../src/engine/prompt-cache.js";
import type { FinishRecord, GenerationRecord, TokenRecord } from "../../src/engine/types.js";
import { chatMessages, chatTools, syntheticEntry } from "./prompt-cache-fixtures.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string" },
    cache: { type: "string" },
    user: { type: "string" },
    count: { type: "string", default: "1" },
  },
});

async function generate(): Promise<void> {
  const model = await Model.load(values.model!, { threads: 1, promptCache: { dir: values.cache! } });
  const chat = new EngineChatModel(model, { contextSize: 512 });
  const prompt = chat.renderChat(chatMessages(values.user!), { tools: chatTools });
  const records: GenerationRecord[] = [];
  for await (const record of chat.generate(prompt, { maxTokens: 12 })) records.push(record);
  await model.promptCache!.flush();
  const tokens = records.filter((record): record is TokenRecord => record.kind === "token").map((record) => record.tokenId);
  const finish = records.at(-1) as FinishRecord;
  process.stdout.write(JSON.stringify({ tokens, finish, stats: model.promptCache!.stats }) + "\n");
  chat.dispose();
  model.dispose();
}

async function write(): Promise<void> {
  const entry = syntheticEntry();
  const cache = new PromptCache({ dir: values.cache!, modelIdentity: entry.modelIdentity });
  const count = Number(values.count);
  for (let i = 0; i < count; i++) {
    cache.store(entry.prefix, entry.state);
    await cache.flush();
  }
  process.stdout.write(JSON.stringify({ writes: cache.stats.writes }) + "\n");
}

if (positionals[0] === "generate") await generate();
else if (positionals[0] === "write") await write();
else throw new Error(`prompt-cache-child: unknown mode ${JSON.stringify(positionals[0])}; use generate or write`);
