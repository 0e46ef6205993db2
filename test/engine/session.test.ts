// Sessions on the real native engine with the tiny random checkpoint: generation records, sampling,
// prefix reuse, cancellation, the context limit, constraints, queueing and disposal.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DisposedError, NessoError } from "../../src/errors.js";
import { EngineChatModel } from "../../src/engine/chat-model.js";
import { Model } from "../../src/engine/model.js";
import type { Session } from "../../src/engine/session.js";
import type { FinishRecord, GenerationRecord, TokenConstraint, TokenRecord } from "../../src/engine/types.js";
import { cachedCheckpoint, nessoVocabSize, tinyCheckpoint, tinyShape } from "../fixtures/checkpoint.js";
import { collect } from "./helpers.js";

let model: Model;
beforeAll(async () => {
  // One compute thread leaves the second core of a two-core machine to the JS thread, whose timer
  // latency the event-loop test measures.
  model = await Model.load(tinyCheckpoint("F32"), { threads: 1 });
});
afterAll(() => model?.dispose());

const prompt = () => model.applyChatTemplate([{ role: "user", content: "Scrivi una frase sulla città di Roma." }]);

function finishOf(records: GenerationRecord[]): FinishRecord {
  const last = records.at(-1)!;
  expect(last.kind).toBe("finish");
  return last as FinishRecord;
}

function tokensOf(records: GenerationRecord[]): number[] {
  return records.filter((record): record is TokenRecord => record.kind === "token").map((record) => record.tokenId);
}

/** Builds a constraint that masks the stop tokens out, so generation runs to maxTokens. */
function noStopConstraint(): TokenConstraint {
  const mask = new Uint8Array(model.config.vocabSize).fill(1);
  for (const id of model.stopTokens) mask[id] = 0;
  return { mask: () => mask, accept: () => {}, isComplete: () => false };
}

/** Random ordinary token ids (a long prompt without special tokens). */
function randomPrompt(length: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 256 + (state % 127000);
  });
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

describe("session generation", () => {
  it("streams token records and a finish record", async () => {
    const session = model.createSession({ contextSize: 256 });
    const records = await collect(session.generate(prompt(), { maxTokens: 12, constraint: noStopConstraint() }));
    const finish = finishOf(records);
    expect(records).toHaveLength(13);
    expect(finish.finishReason).toBe("length");
    expect(finish.generatedTokens).toBe(12);
    expect(finish.promptTokens).toBe(model.encode(prompt()).length);
    expect(finish.reusedTokens).toBe(0);
    expect(finish.prefillMs).toBeGreaterThan(0);
    expect(finish.decodeMs).toBeGreaterThan(0);
    const text = records.filter((record): record is TokenRecord => record.kind === "token").map((record) => record.text).join("");
    expect(finish.text).toBe(text);
    session.dispose();
  });

  it("decodes greedily and reproducibly", async () => {
    const session = model.createSession({ contextSize: 256 });
    const first = tokensOf(await collect(session.generate(prompt(), { maxTokens: 16, constraint: noStopConstraint() })));
    session.reset();
    const second = tokensOf(await collect(session.generate(prompt(), { maxTokens: 16, constraint: noStopConstraint() })));
    expect(second).toEqual(first);

    // Greedy means argmax of the logits after the prompt.
    session.reset();
    await collect(session.generate(prompt(), { maxTokens: 0 }));
    expect(argmax(session.getLogits())).toBe(first[0]);
    session.dispose();
  });

  it("reproduces seeded sampling", async () => {
    const session = model.createSession({ contextSize: 256 });
    const options = { maxTokens: 24, temperature: 1.5, topK: 200, topP: 0.95, seed: 42, constraint: noStopConstraint() };
    const first = tokensOf(await collect(session.generate(prompt(), options)));
    const second = tokensOf(await collect(session.generate(prompt(), options)));
    const other = tokensOf(await collect(session.generate(prompt(), { ...options, seed: 43 })));
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    session.dispose();
  });

  it("reuses the cached prefix", async () => {
    const session = model.createSession({ contextSize: 512 });
    const base = randomPrompt(100, 1);
    await collect(session.generate(base, { maxTokens: 0 }));
    const extended = [...base, ...randomPrompt(20, 2)];
    const finish = finishOf(await collect(session.generate(extended, { maxTokens: 0 })));
    expect(finish.reusedTokens).toBe(100);
    const reusedLogits = session.getLogits();

    const diverging = [...base.slice(0, 60), ...randomPrompt(30, 3)];
    expect(finishOf(await collect(session.generate(diverging, { maxTokens: 0 }))).reusedTokens).toBe(60);

    // The same prompt again re-evaluates only its last token.
    expect(finishOf(await collect(session.generate(diverging, { maxTokens: 0 }))).reusedTokens).toBe(89);

    const fresh = model.createSession({ contextSize: 512 });
    await collect(fresh.generate(extended, { maxTokens: 0 }));
    const freshLogits = fresh.getLogits();
    let maxDifference = 0;
    for (let i = 0; i < freshLogits.length; i++) maxDifference = Math.max(maxDifference, Math.abs(freshLogits[i] - reusedLogits[i]));
    expect(maxDifference).toBeLessThan(1e-3);
    session.dispose();
    fresh.dispose();
  });

  it("tracks the cached tokens", async () => {
    const session = model.createSession({ contextSize: 256 });
    const ids = model.encode(prompt());
    const records = await collect(session.generate(ids, { maxTokens: 5, constraint: noStopConstraint() }));
    // The last sampled token is not evaluated, so it is not in the cache.
    expect(session.tokens).toEqual([...ids, ...tokensOf(records).slice(0, 4)]);
    session.dispose();
  });

  it("cuts output at a stop string", async () => {
    const session = model.createSession({ contextSize: 256 });
    const free = finishOf(await collect(session.generate(prompt(), { maxTokens: 40, constraint: noStopConstraint() })));
    const text = free.text;
    expect(text.length).toBeGreaterThan(10);
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    const records = await collect(session.generate(prompt(), { maxTokens: 40, stop: [stop], constraint: noStopConstraint() }));
    const finish = finishOf(records);
    expect(finish.finishReason).toBe("stop");
    expect(finish.text).toBe(text.slice(0, text.indexOf(stop)));
    expect(records.filter((r): r is TokenRecord => r.kind === "token").map((r) => r.text).join("")).toBe(finish.text);
    session.dispose();
  });

  it("stops on a stop token", async () => {
    const session = model.createSession({ contextSize: 256 });
    const imEnd = model.textTokenizer.tokenId("<|im_end|>")!;
    let step = 0;
    const onlyImEndAtStep3: TokenConstraint = {
      mask: () => {
        const mask = new Uint8Array(model.config.vocabSize).fill(step === 3 ? 0 : 1);
        mask[imEnd] = 1;
        if (step !== 3) for (const id of model.stopTokens) mask[id] = 0;
        return mask;
      },
      accept: () => void step++,
      isComplete: () => false,
    };
    const records = await collect(session.generate(prompt(), { maxTokens: 20, constraint: onlyImEndAtStep3 }));
    const finish = finishOf(records);
    expect(finish.finishReason).toBe("stop");
    expect(tokensOf(records)).toHaveLength(4);
    expect(tokensOf(records)[3]).toBe(imEnd);
    expect((records[3] as TokenRecord).text).toBe("");
    session.dispose();
  });

  it("restricts tokens with a constraint", async () => {
    const session = model.createSession({ contextSize: 256 });
    const allowed = model.encode(" sì no forse");
    const mask = new Uint8Array(model.config.vocabSize);
    for (const id of allowed) mask[id] = 1;
    let accepted = 0;
    const constraint: TokenConstraint = { mask: () => mask, accept: () => void accepted++, isComplete: () => accepted === 5 };
    const records = await collect(session.generate(prompt(), { maxTokens: 50, constraint }));
    expect(tokensOf(records)).toHaveLength(5);
    for (const id of tokensOf(records)) expect(allowed).toContain(id);
    expect(finishOf(records).finishReason).toBe("stop");
    session.dispose();
  });

  it("masks ids the tokenizer lacks", async () => {
    const padded = await Model.load(cachedCheckpoint({ name: "tiny-f32-padded-vocab", shape: { ...tinyShape, vocabSize: nessoVocabSize + 58 }, dtype: "F32", seed: 5 }));
    try {
      expect(padded.config.vocabSize).toBe(nessoVocabSize + 58);
      expect(padded.config.tokenizerVocabSize).toBe(nessoVocabSize);
      const session = padded.createSession({ contextSize: 128 });
      await collect(session.generate(padded.applyChatTemplate([{ role: "user", content: "ciao" }]), { maxTokens: 0 }));
      const logits = session.getLogits();
      expect(logits).toHaveLength(nessoVocabSize + 58);
      for (let id = nessoVocabSize; id < logits.length; id++) expect(logits[id]).toBe(-Infinity);
      const sampled = tokensOf(await collect(session.generate(padded.applyChatTemplate([{ role: "user", content: "ciao" }]), { maxTokens: 30, temperature: 5, seed: 1 })));
      for (const id of sampled) expect(id).toBeLessThan(nessoVocabSize);
    } finally {
      padded.dispose();
    }
  });
});

describe("session limits and cancellation", () => {
  it("reports context_full for a prompt longer than the context", async () => {
    const session = model.createSession({ contextSize: 64 });
    const records = await collect(session.generate(randomPrompt(65, 4)));
    const finish = finishOf(records);
    expect(records).toHaveLength(1);
    expect(finish.finishReason).toBe("context_full");
    expect(finish.promptTokens).toBe(65);
    expect(finish.generatedTokens).toBe(0);
    // The session is still usable.
    expect(finishOf(await collect(session.generate(randomPrompt(10, 4), { maxTokens: 2, constraint: noStopConstraint() }))).finishReason).toBe("length");
    session.dispose();
  });

  it("reports context_full when output fills the context", async () => {
    const session = model.createSession({ contextSize: 64 });
    const finish = finishOf(await collect(session.generate(randomPrompt(60, 5), { maxTokens: 100, constraint: noStopConstraint() })));
    expect(finish.finishReason).toBe("context_full");
    // 60 prompt tokens + 4 evaluated outputs fill 64 positions; the fifth output is sampled last.
    expect(finish.generatedTokens).toBe(5);
    expect(session.tokens).toHaveLength(64);
    session.dispose();
  });

  it("keeps the event loop turning during a 1,000-token prefill", async () => {
    const session = model.createSession({ contextSize: 1024 });
    const longPrompt = randomPrompt(1000, 6);

    /**
     * Runs 1,000-token prefills from an empty cache (at least five, and until 300 ms have passed)
     * while a 5 ms timer counts its ticks.
     */
    const measure = async () => {
      let ticks = 0;
      let last = performance.now();
      let maxGap = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
        ticks++;
      }, 5);
      const started = performance.now();
      let prefillMs = 0;
      let prefills = 0;
      while (prefills < 5 || (performance.now() - started < 300 && prefills < 50)) {
        session.reset();
        prefillMs += finishOf(await collect(session.generate(longPrompt, { maxTokens: 0 }))).prefillMs;
        prefills++;
      }
      const elapsed = performance.now() - started;
      clearInterval(timer);
      return { ticks, maxGap, elapsed, prefillMs, prefills };
    };

    // A prefill that blocked the JS thread would stop the timer for the whole prefill in every
    // attempt. Other processes on a loaded machine can also delay a timer, so the best of three
    // attempts is judged.
    const attempts = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await measure();
      attempts.push(result);
      if (result.maxGap < 50) break;
    }
    for (const { prefills, prefillMs, ticks, maxGap } of attempts) {
      console.info(`${prefills} prefills of 1,000 tokens: ${prefillMs.toFixed(0)} ms, ${ticks} timer ticks, longest gap ${maxGap.toFixed(1)} ms`);
    }
    const best = attempts.reduce((a, b) => (a.maxGap <= b.maxGap ? a : b));
    expect(best.prefillMs).toBeGreaterThan(100);
    expect(best.maxGap).toBeLessThan(50);
    // A 5 ms timer that ran through the whole span ticks about elapsed / 5 times; demand a fifth.
    expect(best.ticks).toBeGreaterThanOrEqual(Math.floor(best.elapsed / 25));
    session.dispose();
  });

  it("aborts a prefill and stays usable", async () => {
    const session = model.createSession({ contextSize: 2048 });
    const longPrompt = randomPrompt(2000, 7);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1);
    const finish = finishOf(await collect(session.generate(longPrompt, { signal: controller.signal })));
    expect(finish.finishReason).toBe("abort");
    expect(finish.generatedTokens).toBe(0);
    expect(session.tokens.length).toBeLessThan(2000);

    // The next generation resumes from what was evaluated and gives the same logits as a fresh session.
    const short = longPrompt.slice(0, 300);
    const resumed = finishOf(await collect(session.generate(short, { maxTokens: 0 })));
    expect(resumed.finishReason).toBe("length");
    const fresh = model.createSession({ contextSize: 512 });
    await collect(fresh.generate(short, { maxTokens: 0 }));
    const a = session.getLogits();
    const b = fresh.getLogits();
    let maxDifference = 0;
    for (let i = 0; i < a.length; i++) maxDifference = Math.max(maxDifference, Math.abs(a[i] - b[i]));
    expect(maxDifference).toBeLessThan(1e-3);
    session.dispose();
    fresh.dispose();
  });

  it("aborts during decode", async () => {
    const session = model.createSession({ contextSize: 256 });
    const controller = new AbortController();
    const records: GenerationRecord[] = [];
    for await (const record of session.generate(prompt(), { maxTokens: 100, signal: controller.signal, constraint: noStopConstraint() })) {
      records.push(record);
      if (records.length === 3) controller.abort();
    }
    const finish = finishOf(records);
    expect(finish.finishReason).toBe("abort");
    expect(finish.generatedTokens).toBe(3);
    expect(finishOf(await collect(session.generate(prompt(), { maxTokens: 2, constraint: noStopConstraint() }))).finishReason).toBe("length");
    session.dispose();
  });

  it("finishes at once with an aborted signal", async () => {
    const session = model.createSession({ contextSize: 256 });
    const records = await collect(session.generate(prompt(), { signal: AbortSignal.abort() }));
    expect(records).toHaveLength(1);
    expect(finishOf(records).finishReason).toBe("abort");
    session.dispose();
  });

  it("queues concurrent generations", async () => {
    const session = model.createSession({ contextSize: 256 });
    const options = { maxTokens: 8, constraint: noStopConstraint() };
    const expected = tokensOf(await collect(session.generate(prompt(), options)));
    const order: string[] = [];
    const run = async (name: string) => {
      const records: GenerationRecord[] = [];
      for await (const record of session.generate(prompt(), options)) {
        order.push(name);
        records.push(record);
      }
      return tokensOf(records);
    };
    const [a, b] = await Promise.all([run("a"), run("b")]);
    expect(a).toEqual(expected);
    expect(b).toEqual(expected);
    expect(order.join("")).toBe("a".repeat(9) + "b".repeat(9));
    session.dispose();
  });

  it("frees the session when the consumer stops early", async () => {
    const session = model.createSession({ contextSize: 256 });
    for await (const record of session.generate(prompt(), { maxTokens: 50, constraint: noStopConstraint() })) {
      expect(record.kind).toBe("token");
      break;
    }
    const finish = finishOf(await collect(session.generate(prompt(), { maxTokens: 3, constraint: noStopConstraint() })));
    expect(finish.finishReason).toBe("length");
    session.dispose();
  });

  it("rejects invalid options", async () => {
    const session = model.createSession({ contextSize: 64 });
    const cases: [object, RegExp][] = [
      [{ maxTokens: -1 }, /maxTokens must be an integer >= 0, got -1/],
      [{ temperature: -0.5 }, /temperature must be a number from 0 to 1e6/],
      [{ temperature: 1e308 }, /temperature must be a number from 0 to 1e6/],
      [{ repeatPenalty: 1e-300 }, /repeatPenalty must be a number from 1e-6 to 1e6/],
      [{ topP: 0 }, /topP must be in \(0, 1\]/],
      [{ seed: 1.5 }, /seed must be an integer/],
      [{ stop: "x" }, /stop must be a list of non-empty strings/],
      [{ stop: [""] }, /stop must be a list of non-empty strings/],
    ];
    for (const [options, pattern] of cases) {
      await expect(collect(session.generate("ciao", options)), JSON.stringify(options)).rejects.toThrow(pattern);
    }
    await expect(collect(session.generate([]))).rejects.toThrow(/prompt is empty/);
    await expect(collect(session.generate([model.config.vocabSize]))).rejects.toThrow(/outside the vocabulary/);
    session.dispose();
  });

  it("rejects an oversized context", () => {
    expect(() => model.createSession({ contextSize: model.config.maxContextSize + 1 })).toThrow(NessoError);
    expect(() => model.createSession({ contextSize: 0 })).toThrow(/contextSize must be an integer from 1/);
  });
});

describe("disposal", () => {
  it("disposes a session twice safely", async () => {
    const session: Session = model.createSession({ contextSize: 64 });
    session.dispose();
    session.dispose();
    await expect(collect(session.generate("ciao"))).rejects.toThrow(DisposedError);
  });

  it("disposes a session during generation", async () => {
    const session = model.createSession({ contextSize: 256 });
    const records: GenerationRecord[] = [];
    for await (const record of session.generate(prompt(), { maxTokens: 100, constraint: noStopConstraint() })) {
      records.push(record);
      if (records.length === 2) session.dispose();
    }
    expect(finishOf(records).finishReason).toBe("abort");
    expect(session.disposed).toBe(true);
  });

  it("disposes a model and its sessions", async () => {
    const other = await Model.load(tinyCheckpoint("F32"), { threads: 1 });
    const session = other.createSession({ contextSize: 64 });
    await other[Symbol.asyncDispose]();
    other.dispose();
    expect(other.disposed).toBe(true);
    expect(session.disposed).toBe(true);
    expect(() => other.createSession()).toThrow(DisposedError);
  });
});

describe("EngineChatModel", () => {
  it("renders, counts and generates through one session", async () => {
    const chat = new EngineChatModel(model, { contextSize: 512 });
    const messages = [
      { role: "system" as const, content: "Sei un assistente." },
      { role: "user" as const, content: "Che ore sono a Milano? 🙂" },
    ];
    const text = chat.renderChat(messages);
    expect(text.endsWith("<|im_start|>assistant\n")).toBe(true);
    expect(chat.countTokens(text)).toBe(model.encode(text).length);
    expect(chat.contextSize).toBe(512);
    const first = finishOf(await collect(chat.generate(text, { maxTokens: 4, constraint: noStopConstraint() })));
    expect(first.generatedTokens).toBe(4);
    const followUp = text + first.text + "<|im_end|>\n<|im_start|>user\nE a Roma?<|im_end|>\n<|im_start|>assistant\n";
    const second = finishOf(await collect(chat.generate(followUp, { maxTokens: 2, constraint: noStopConstraint() })));
    expect(second.reusedTokens).toBeGreaterThan(chat.countTokens(text) - 1);
    chat.dispose();
    chat.dispose();
  });
});
