// Fixture repos for the Hub test server: a small synthetic MLX-style repo, and one built from a
// real fixture checkpoint directory so the pulled snapshot can be loaded by the engine.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRandom } from "../fixtures/random.js";
import { randomCommit, type FixtureFile, type FixtureRepo } from "./hub-server.js";

/** Returns seeded pseudo-random bytes, so a failing test can be rerun on the same content. */
export function seededBytes(length: number, seed: number): Buffer {
  const random = createRandom(seed);
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value, null, 2), "utf8");

/**
 * Builds a repo with the files an MLX conversion has: a 3 MB LFS model.safetensors, config, index,
 * tokenizer files, chat template and a README with Italian text and emoji. It also has files the
 * engine does not need (.gitattributes, a script, a file in a subfolder), which a pull must skip.
 */
export function syntheticRepo(id: string, seed = 7): FixtureRepo {
  const files: FixtureFile[] = [
    { name: ".gitattributes", content: Buffer.from("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"), lfs: false },
    { name: "README.md", content: Buffer.from("# Nesso 🐣\n\nModello bilingue: perché così è più facile.\n", "utf8"), lfs: false },
    { name: "chat_template.jinja", content: Buffer.from("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"), lfs: false },
    { name: "config.json", content: json({ model_type: "llama", hidden_size: 64, note: "caffè ☕" }), lfs: false },
    { name: "convert.py", content: Buffer.from("print('not needed')\n"), lfs: false },
    { name: "model.safetensors", content: seededBytes(3 * 1024 * 1024, seed), lfs: true },
    { name: "model.safetensors.index.json", content: json({ metadata: { total_size: 3 * 1024 * 1024 }, weight_map: { "model.norm.weight": "model.safetensors" } }), lfs: false },
    { name: "original/consolidated.bin", content: seededBytes(4096, seed + 1), lfs: true },
    { name: "tokenizer.json", content: json({ version: "1.0", added_tokens: [{ id: 0, content: "<|im_start|>" }], model: { vocab: { ciao: 1, "👋": 2 } } }), lfs: true },
    { name: "tokenizer_config.json", content: json({ bos_token: "<|begin_of_text|>", eos_token: "<|im_end|>" }), lfs: false },
  ];
  return { id, commit: randomCommit(), files };
}

/** The files the engine needs from `syntheticRepo`, in the order a pull reports them. */
export const syntheticModelFiles = [
  "README.md",
  "chat_template.jinja",
  "config.json",
  "model.safetensors",
  "model.safetensors.index.json",
  "tokenizer.json",
  "tokenizer_config.json",
];

/** Builds a repo from the files of a checkpoint directory, serving safetensors and tokenizer.json as LFS files. */
export function repoFromDirectory(id: string, dir: string): FixtureRepo {
  const files = readdirSync(dir)
    .filter((name) => !name.startsWith("."))
    .map((name) => ({ name, content: readFileSync(join(dir, name)), lfs: name.endsWith(".safetensors") || name === "tokenizer.json" }));
  return { id, commit: randomCommit(), files };
}

/** Creates a temporary directory and returns it with a function that removes it. */
export function temporaryDirectory(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
