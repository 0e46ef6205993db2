// The model's own chat template, rendered with @huggingface/jinja the way transformers'
// apply_chat_template does: trim_blocks and lstrip_blocks on, tojson without ASCII escaping, and the
// tokenizer's special tokens (bos_token, eos_token, ...) in the template's variables.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { NessoError } from "../errors.js";
import type { ChatMessage, ChatToolDefinition } from "./types.js";
import { specialTokenText, type TokenizerConfigJson } from "./tokenizer.js";

export interface ChatTemplateOptions {
  /** Tools offered to the model (OpenAI function format); omitted or empty renders no tool section. */
  tools?: ChatToolDefinition[];
  /** Append the opening of the assistant turn (default true). */
  addGenerationPrompt?: boolean;
}

/** A compiled chat template together with the special tokens it may reference. */
export class ChatTemplate {
  private readonly templates: Map<string, Template>;
  private readonly specialTokens: Record<string, string>;

  /**
   * `source` is one template, or named templates as tokenizer_config.json may list them; with a
   * list, "tool_use" is chosen when tools are given and "default" otherwise.
   */
  constructor(source: string | { name: string; template: string }[], tokenizerConfig: TokenizerConfigJson) {
    const named = typeof source === "string" ? [{ name: "default", template: source }] : source;
    this.templates = new Map();
    for (const { name, template } of named) {
      try {
        this.templates.set(name, new Template(template));
      } catch (error) {
        throw new NessoError("INVALID_MODEL", `chat template "${name}" does not parse: ${(error as Error).message}`, { cause: error });
      }
    }
    if (!this.templates.has("default") && this.templates.size > 0) {
      throw new NessoError("INVALID_MODEL", `tokenizer_config.json lists chat templates ${[...this.templates.keys()].join(", ")} but none named "default"`);
    }
    this.specialTokens = {};
    for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"] as const) {
      const text = specialTokenText(tokenizerConfig[key]);
      if (text !== null) this.specialTokens[key] = text;
    }
  }

  /**
   * Loads the template of a model directory: chat_template.jinja when it exists, else the
   * chat_template entry of tokenizer_config.json.
   */
  static async load(dir: string, tokenizerConfig: TokenizerConfigJson): Promise<ChatTemplate> {
    let source: string | { name: string; template: string }[] | null = null;
    try {
      source = await readFile(join(dir, "chat_template.jinja"), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      source = tokenizerConfig.chat_template ?? null;
    }
    if (source === null) {
      throw new NessoError("MODEL_NOT_FOUND", `no chat template in ${dir}: neither chat_template.jinja nor a chat_template entry in tokenizer_config.json; download the model again with nesso-mcp pull`);
    }
    return new ChatTemplate(source, tokenizerConfig);
  }

  /** Renders messages (and tools) to the prompt text, BOS included when the template writes it. */
  render(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    const tools = options.tools && options.tools.length > 0 ? options.tools : undefined;
    const template = (tools && this.templates.get("tool_use")) || this.templates.get("default");
    if (!template) throw new NessoError("INTERNAL", "chat template map is empty");
    try {
      return template.render({
        ...this.specialTokens,
        messages,
        tools,
        add_generation_prompt: options.addGenerationPrompt ?? true,
      });
    } catch (error) {
      throw new NessoError("INVALID_ARGUMENT", `rendering the chat template failed for ${messages.length} messages: ${(error as Error).message}`, { cause: error });
    }
  }
}
