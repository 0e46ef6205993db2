// Shared inputs of the prompt cache tests and their child process: a bilingual chat with tools and
// a synthetic cache entry.

import { createHash } from "node:crypto";
import type { ChatMessage, ChatToolDefinition } from "../../src/engine/types.js";

export const systemPrompt = "Sei un assistente che lavora sui file del progetto. Rispondi in italiano o in English, con cura. ✅";

export const chatTools: ChatToolDefinition[] = [
  {
    type: "function",
    function: {
      name: "read_file",
      description: "Legge un file di testo (UTF-8) e ne restituisce il contenuto.",
      parameters: { type: "object", properties: { path: { type: "string", description: "Percorso del file, es. città/perché.md" } }, required: ["path"] },
    },
  },
  {
    type: "function",
    function: {
      name: "list_directory",
      description: "Lists the entries of a directory.",
      parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
    },
  },
];

export function chatMessages(user: string, system: string = systemPrompt): ChatMessage[] {
  return [
    { role: "system", content: system },
    { role: "user", content: user },
  ];
}

/** Builds a deterministic prefix and state, so a writer process and a reader agree on them (8 MiB payload by default). */
export function syntheticEntry(payloadBytes = 8 * 1024 * 1024): { modelIdentity: string; prefix: number[]; state: Uint8Array } {
  const modelIdentity = createHash("sha256").update("synthetic model").digest("hex");
  const prefix = Array.from({ length: 40 }, (_, i) => 1000 + i * 37);
  const state = new Uint8Array(payloadBytes);
  let value = 12345;
  for (let i = 0; i < state.length; i++) {
    value = (Math.imul(value, 1103515245) + 12345) >>> 0;
    state[i] = value >>> 24;
  }
  return { modelIdentity, prefix, state };
}
