// The model's tokenizer (tokenizer.json + tokenizer_config.json through @huggingface/tokenizers) and
// a streaming detokenizer that only ever emits complete UTF-8 characters.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { NessoError } from "../errors.js";

/** tokenizer_config.json as far as the engine reads it; a special token may be a string or `{content}`. */
export interface TokenizerConfigJson {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string | { name: string; template: string }[] | null;
  [key: string]: unknown;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

/** Reads a JSON file of the model directory; errors name the file and the fix. */
export async function readModelJson(dir: string, fileName: string): Promise<unknown> {
  const path = join(dir, fileName);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new NessoError("MODEL_NOT_FOUND", `${fileName} not found in ${dir}; download the model with nesso-mcp pull`, { cause: error });
    }
    throw new NessoError("INVALID_MODEL", `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new NessoError("INVALID_MODEL", `${path} is not valid JSON (${(error as Error).message}); download the model again with nesso-mcp pull`, { cause: error });
  }
}

/** The text of a special-token entry of tokenizer_config.json, or null. */
export function specialTokenText(value: TokenizerConfigJson["bos_token"]): string | null {
  if (value == null) return null;
  return typeof value === "string" ? value : value.content;
}

/**
 * The GPT-2 byte-level alphabet: each byte is written as one printable character. Printable
 * Latin-1 bytes map to themselves and the rest to U+0100 onwards, in byte order.
 */
function byteLevelDecoder(): Map<string, number> {
  const printable = (byte: number) => (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const decoder = new Map<string, number>();
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (printable(byte)) {
      decoder.set(String.fromCodePoint(byte), byte);
    } else {
      decoder.set(String.fromCodePoint(256 + next), byte);
      next++;
    }
  }
  return decoder;
}

function usesByteLevelDecoder(tokenizerJson: Record<string, unknown>): boolean {
  const decoder = tokenizerJson.decoder as { type?: string; decoders?: { type?: string }[] } | null | undefined;
  if (!decoder) return false;
  if (decoder.type === "ByteLevel") return true;
  return decoder.type === "Sequence" && (decoder.decoders ?? []).some((step) => step.type === "ByteLevel");
}

/** A loaded tokenizer with the operations the engine needs. */
export class TextTokenizer {
  /** The @huggingface/tokenizers instance. */
  readonly tokenizer: Tokenizer;
  readonly config: TokenizerConfigJson;
  /** Highest token id + 1 (base vocabulary and added tokens). */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** True when tokens are GPT-2 byte-level strings (Llama 3, and so Nesso). */
  readonly byteLevel: boolean;
  private readonly addedTokens = new Map<number, AddedTokenJson>();
  private readonly tokenBytes: (Uint8Array | undefined)[] = [];
  private byteDecoder: Map<string, number> | null = null;

  constructor(tokenizerJson: Record<string, unknown>, config: TokenizerConfigJson) {
    this.tokenizer = new Tokenizer(tokenizerJson, config);
    this.config = config;
    this.byteLevel = usesByteLevelDecoder(tokenizerJson);
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    for (const token of (tokenizerJson.added_tokens ?? []) as AddedTokenJson[]) {
      this.addedTokens.set(token.id, token);
      maxId = Math.max(maxId, token.id);
    }
    this.vocabSize = maxId + 1;
    this.bosToken = specialTokenText(config.bos_token);
    this.eosToken = specialTokenText(config.eos_token);
  }

  /** Loads tokenizer.json and tokenizer_config.json from a model directory. */
  static async load(dir: string): Promise<TextTokenizer> {
    const tokenizerJson = await readModelJson(dir, "tokenizer.json");
    const config = await readModelJson(dir, "tokenizer_config.json");
    if (typeof tokenizerJson !== "object" || tokenizerJson === null || typeof config !== "object" || config === null) {
      throw new NessoError("INVALID_MODEL", `tokenizer.json and tokenizer_config.json in ${dir} must each hold a JSON object`);
    }
    try {
      return new TextTokenizer(tokenizerJson as Record<string, unknown>, config as TokenizerConfigJson);
    } catch (error) {
      throw new NessoError("INVALID_MODEL", `tokenizer.json in ${dir} could not be loaded: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Encodes text without adding special tokens: a rendered chat prompt already starts with its BOS,
   * and the added tokens in it (e.g. `<|im_start|>`) are matched before BPE.
   */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Decodes ids to text without cleaning up spaces, so encode/decode round-trips. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  /** The id of a token string (an added token's content or a vocabulary entry), or undefined. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The token string of an id as tokenizer.json stores it (byte-level form for ordinary tokens). */
  tokenString(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** True for added tokens flagged `special` (control tokens such as `<|im_end|>`). */
  isSpecial(id: number): boolean {
    return this.addedTokens.get(id)?.special === true;
  }

  /** The added tokens of tokenizer.json by id. */
  addedTokenList(): AddedTokenJson[] {
    return [...this.addedTokens.values()].sort((a, b) => a.id - b.id);
  }

  /**
   * The raw UTF-8 bytes a token stands for (empty for special tokens, whose text is not part of
   * generated output). Only for byte-level tokenizers.
   */
  bytesOf(id: number): Uint8Array {
    const cached = this.tokenBytes[id];
    if (cached) return cached;
    const added = this.addedTokens.get(id);
    let bytes: Uint8Array;
    if (added) {
      bytes = added.special ? new Uint8Array(0) : new TextEncoder().encode(added.content);
    } else {
      const token = this.tokenizer.id_to_token(id) ?? "";
      this.byteDecoder ??= byteLevelDecoder();
      const out: number[] = [];
      for (const char of token) {
        const byte = this.byteDecoder.get(char);
        if (byte !== undefined) out.push(byte);
        else out.push(...new TextEncoder().encode(char));
      }
      bytes = Uint8Array.from(out);
    }
    this.tokenBytes[id] = bytes;
    return bytes;
  }

  /** Creates a decoder for one stream of generated ids. */
  createStreamDecoder(): StreamDecoder {
    return this.byteLevel ? new ByteLevelStreamDecoder(this) : new TextDiffStreamDecoder(this);
  }
}

/** Turns generated ids into text pieces that never split a UTF-8 character. */
export interface StreamDecoder {
  /** Adds one token and returns the newly completed text (may be ""). */
  push(id: number): string;
  /** Returns held-back bytes at the end of the stream (an incomplete character becomes U+FFFD). */
  flush(): string;
}

/** Byte-level tokens: the bytes are concatenated and decoded with a streaming UTF-8 decoder that holds back incomplete sequences. */
class ByteLevelStreamDecoder implements StreamDecoder {
  private readonly utf8 = new TextDecoder("utf-8");

  constructor(private readonly tokenizer: TextTokenizer) {}

  push(id: number): string {
    return this.utf8.decode(this.tokenizer.bytesOf(id), { stream: true });
  }

  flush(): string {
    return this.utf8.decode();
  }
}

/**
 * Other tokenizers: decode all ids and emit the new suffix once it no longer ends in U+FFFD.
 * NOTE: quadratic in the output length, and assumes decoding more ids never changes earlier text;
 * no test runs a tokenizer that is not byte-level.
 */
class TextDiffStreamDecoder implements StreamDecoder {
  private readonly ids: number[] = [];
  private emitted = 0;

  constructor(private readonly tokenizer: TextTokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    if (text.endsWith("\uFFFD")) return "";
    const piece = text.slice(this.emitted);
    this.emitted = text.length;
    return piece;
  }

  flush(): string {
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    const piece = text.slice(this.emitted);
    this.emitted = text.length;
    return piece;
  }
}
