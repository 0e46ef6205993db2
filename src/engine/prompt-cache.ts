// The persistent prompt cache saves the KV cache states of prompt prefixes (typically the system
// turn with its tools) as files. A later session or process whose prompt starts with the same
// tokens loads the state instead of evaluating the prefix again.
//
// One file per prefix, named by sha256(model identity, prefix token ids). Layout, little-endian:
//   0   magic "NESSOPFX" (8 bytes)
//   8   format version (u32)
//   12  prefix token count n (u32)
//   16  model identity (32 bytes, see computeModelIdentity)
//   48  payload length (u64)
//   56  sha256 of the payload (32 bytes)
//   88  the n prefix token ids (u32 each)
//   88 + 4n  payload: the native saveState() bytes
// Files are written under a temporary name, fsynced and renamed, so a reader sees either no file or
// a complete one. A file that fails any check is logged at debug level, deleted and never loaded.

import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, stat, unlink, utimes, type FileHandle } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import type { CheckpointTensors } from "./checkpoint.js";
import type { KvCacheType, NativeContext } from "./native-api.js";
import type { TextTokenizer } from "./tokenizer.js";

const log = createLogger("prompt-cache");

const magic = Buffer.from("NESSOPFX", "ascii");
const formatVersion = 1;
const fixedHeaderBytes = 88;
const entryExtension = ".nkv";
const entryNamePattern = /^[0-9a-f]{64}\.nkv$/;
const tempNamePattern = /^\.[0-9a-f]{64}\.\d+\.[0-9a-f]+\.tmp$/;
/** Temporary files older than this belong to a writer that died; cleanup removes them. */
const staleTempMs = 60 * 60 * 1000;
/** Bytes hashed between yields to the event loop (about 40 ms of sha256 on a slow core). */
const hashChunkBytes = 16 * 1024 * 1024;

/** Default size bound of the cache directory: 2 GiB. */
export const defaultPromptCacheMaxBytes = 2 * 1024 ** 3;

/** Settings of the persistent prompt cache. */
export interface PromptCacheOptions {
  /**
   * Directory of the cache files (default: resolvePromptCacheDir(), which reads
   * NESSO_MCP_CACHE_DIR and XDG_CACHE_HOME). It is created with mode 0700 on the first write,
   * because the states are derived from the prompts.
   */
  dir?: string;
  /**
   * Upper bound in bytes on the cache files in `dir` (default 2 GiB). After each write the least
   * recently used files are deleted until the total fits. A Nesso KV state costs 81,920 bytes per
   * token in float32, so a 2,000-token system prompt with tools takes about 160 MB.
   */
  maxBytes?: number;
  /** false turns the cache off (default true). */
  enabled?: boolean;
}

/** Counters of one PromptCache instance, for tests, benchmarks and debug output. */
export interface PromptCacheStats {
  hits: number;
  misses: number;
  /** Files ignored and deleted because a check failed. */
  rejected: number;
  writes: number;
  /** Files deleted to keep the directory under maxBytes. */
  evictions: number;
}

/**
 * Returns the default cache directory: $NESSO_MCP_CACHE_DIR when set, else
 * $XDG_CACHE_HOME/nesso-mcp/prompt-cache, else ~/Library/Caches/nesso-mcp/prompt-cache on macOS and
 * ~/.cache/nesso-mcp/prompt-cache elsewhere.
 */
export function resolvePromptCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.NESSO_MCP_CACHE_DIR) return resolve(env.NESSO_MCP_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return resolve(env.XDG_CACHE_HOME, "nesso-mcp", "prompt-cache");
  if (platform === "darwin") return join(homedir(), "Library", "Caches", "nesso-mcp", "prompt-cache");
  return join(homedir(), ".cache", "nesso-mcp", "prompt-cache");
}

/**
 * Computes the sha256 (hex) that identifies a checkpoint for the prompt cache: config.json, every
 * safetensors file's name, size and JSON header, and the first and last 64 bytes of each tensor.
 * It reads a few kilobytes, not the weights. Two checkpoints that agree on all of these but differ
 * elsewhere in their weights get the same identity, and a state of one would be loaded into the
 * other. Fine-tunes and re-conversions change the sampled bytes in practice; hashing all weights
 * would cost seconds per load (about 0.9 GB for Nesso in bf16).
 */
export async function computeModelIdentity(modelDir: string, checkpoint: CheckpointTensors): Promise<string> {
  const hash = createHash("sha256");
  hash.update(`nesso-mcp model identity ${formatVersion}\n`);
  const configHandle = await open(join(modelDir, "config.json"), "r");
  try {
    const config = await configHandle.readFile();
    hash.update(`config.json ${config.byteLength}\n`).update(config);
  } finally {
    await configHandle.close();
  }

  const tensorsByFile = checkpoint.files.map(() => [] as { name: string; offset: number; byteLength: number }[]);
  for (const tensor of checkpoint.tensors.values()) tensorsByFile[tensor.file].push(tensor);

  for (let file = 0; file < checkpoint.files.length; file++) {
    const path = checkpoint.files[file];
    const handle = await open(path, "r");
    try {
      const size = (await handle.stat()).size;
      const headerLength = Number((await readExactly(handle, 8, 0)).readBigUInt64LE(0));
      const header = await readExactly(handle, headerLength, 8);
      hash.update(`${path.slice(resolve(modelDir).length)} ${size} ${headerLength}\n`).update(header);

      // Tensor names are unique, so the order is total.
      const tensors = tensorsByFile[file].sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const tensor of tensors) {
        const sample = Math.min(64, tensor.byteLength);
        hash.update(tensor.name);
        hash.update(await readExactly(handle, sample, tensor.offset));
        hash.update(await readExactly(handle, sample, tensor.offset + tensor.byteLength - sample));
      }
    } finally {
      await handle.close();
    }
  }
  return hash.digest("hex");
}

/**
 * Returns how many tokens of `tokens` form the first system turn (up to and including its
 * `<|im_end|>`), or 0 when the prompt does not open with a system turn. This is the prefix that
 * repeats across agent runs: the system prompt with the tools.
 */
export function systemTurnLength(tokens: readonly number[], tokenizer: TextTokenizer): number {
  const turnStart = tokenizer.tokenId("<|im_start|>");
  const turnEnd = tokenizer.tokenId("<|im_end|>");
  if (turnStart === undefined || turnEnd === undefined) return 0;
  const start = tokens.indexOf(turnStart);
  // Only a BOS token and whitespace may come before the system turn.
  if (start === -1 || start > 4) return 0;
  if (start > 0 && tokenizer.decode(tokens.slice(0, start), { skipSpecialTokens: true }).trim() !== "") return 0;
  const end = tokens.indexOf(turnEnd, start + 1);
  if (end === -1) return 0;
  const role = tokenizer.decode(tokens.slice(start + 1, Math.min(end, start + 4)));
  if (!/^system\s/.test(role)) return 0;
  return end + 1;
}

/**
 * KV cache states of prompt prefixes in one directory, for one model. Lookups verify each file
 * before it reaches the native engine, and a failed write is logged without failing a generation.
 * Several processes may share the directory.
 */
export class PromptCache {
  readonly dir: string;
  readonly maxBytes: number;
  /** sha256 (hex) of the model the states belong to. */
  readonly modelIdentity: string;
  private readonly modelIdentityBytes: Buffer;
  private readonly pendingWrites = new Map<string, Promise<void>>();
  private writeErrorLogged = false;
  private readonly counters: PromptCacheStats = { hits: 0, misses: 0, rejected: 0, writes: 0, evictions: 0 };

  constructor(options: { dir?: string; maxBytes?: number; modelIdentity: string }) {
    const maxBytes = options.maxBytes ?? defaultPromptCacheMaxBytes;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new NessoError("INVALID_ARGUMENT", `prompt cache: maxBytes must be an integer >= 1 (bytes), got ${JSON.stringify(options.maxBytes)}`);
    }
    if (options.dir !== undefined && (typeof options.dir !== "string" || options.dir === "")) {
      throw new NessoError("INVALID_ARGUMENT", `prompt cache: dir must be a non-empty path, got ${JSON.stringify(options.dir)}`);
    }
    if (!/^[0-9a-f]{64}$/.test(options.modelIdentity)) {
      throw new NessoError("INVALID_ARGUMENT", `prompt cache: modelIdentity must be a sha256 in hex, got ${JSON.stringify(options.modelIdentity)}`);
    }
    this.dir = resolve(options.dir ?? resolvePromptCacheDir());
    this.maxBytes = maxBytes;
    this.modelIdentity = options.modelIdentity;
    this.modelIdentityBytes = Buffer.from(options.modelIdentity, "hex");
  }

  get stats(): Readonly<PromptCacheStats> {
    return { ...this.counters };
  }

  /**
   * Path of the file that contains the state of this prefix. A state contains the KV cache in the
   * context's element type, so the type is part of the key.
   */
  pathOf(prefix: readonly number[], kvCacheType: KvCacheType = "f16"): string {
    const hash = createHash("sha256");
    hash.update(this.modelIdentityBytes);
    hash.update(`kv ${kvCacheType}\n`);
    hash.update(tokenBytes(prefix));
    return join(this.dir, hash.digest("hex") + entryExtension);
  }

  /**
   * Reads and verifies the state saved for exactly this prefix and marks it as recently used.
   * Returns the native state, or null when there is none or the file fails a check (that file is
   * then deleted).
   */
  async lookup(prefix: readonly number[], kvCacheType: KvCacheType = "f16"): Promise<Uint8Array | null> {
    const state = await this.read(prefix, kvCacheType);
    if (state !== null) this.counters.hits++;
    return state;
  }

  /**
   * Restores the state of `prefix` into `context` from the cache. Returns true when the context
   * now contains exactly the prefix, and false when it was left as it was.
   */
  async restore(context: NativeContext, prefix: readonly number[]): Promise<boolean> {
    const state = await this.read(prefix, context.kvCacheType);
    if (state === null) return false;
    const path = this.pathOf(prefix, context.kvCacheType);
    try {
      await context.loadState(state);
    } catch (error) {
      // The file's own checks passed, so the engine disagrees on geometry, weights or format.
      await this.reject(path, `the engine rejected the state (${(error as Error).message})`);
      return false;
    }
    this.counters.hits++;
    log.debug(() => `restored ${prefix.length} prefix tokens from ${path}`);
    return true;
  }

  /**
   * Saves the KV state of the first `prefix.length` tokens of `context` unless a file contains it.
   * Awaits only the native copy; the file is written in the background (see flush()). Errors are
   * logged, never thrown.
   */
  async save(context: NativeContext, prefix: readonly number[]): Promise<void> {
    const path = this.pathOf(prefix, context.kvCacheType);
    if (this.pendingWrites.has(path)) return;
    if (await this.exists(path)) {
      await this.touch(path);
      return;
    }
    let state: Uint8Array;
    try {
      state = await context.saveState(prefix.length);
    } catch (error) {
      this.logWriteError(`saving the state of ${prefix.length} prefix tokens failed`, error);
      return;
    }
    this.store(prefix, state, context.kvCacheType);
  }

  /**
   * Writes `state` as the entry of `prefix` in the background, then evicts least recently used
   * files beyond maxBytes. Errors are logged, never thrown. flush() waits for the write.
   */
  store(prefix: readonly number[], state: Uint8Array, kvCacheType: KvCacheType = "f16"): void {
    const path = this.pathOf(prefix, kvCacheType);
    if (this.pendingWrites.has(path)) return;
    const write = this.writeEntry(path, prefix, state)
      .catch((error: unknown) => this.logWriteError(`writing ${path} failed`, error))
      .finally(() => this.pendingWrites.delete(path));
    this.pendingWrites.set(path, write);
  }

  /** Waits for the background writes started so far. */
  async flush(): Promise<void> {
    while (this.pendingWrites.size > 0) await Promise.all(this.pendingWrites.values());
  }

  /** Reads the verified state of `prefix`, or null on a miss or a rejected file. */
  private async read(prefix: readonly number[], kvCacheType: KvCacheType): Promise<Uint8Array | null> {
    const path = this.pathOf(prefix, kvCacheType);
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") log.debug(`opening ${path} failed, treating it as a miss`, error);
      this.counters.misses++;
      return null;
    }

    let entry: { problem: string | null; payload: Uint8Array | null };
    try {
      entry = await this.readEntry(handle, prefix);
    } catch (error) {
      entry = { problem: `reading it failed (${(error as Error).message})`, payload: null };
    } finally {
      await handle.close();
    }
    if (entry.payload === null) {
      await this.reject(path, entry.problem ?? "it has no payload");
      return null;
    }
    await this.touch(path);
    return entry.payload;
  }

  /** Reads the header and payload of an open entry and returns the first failed check, if any. */
  private async readEntry(handle: FileHandle, prefix: readonly number[]): Promise<{ problem: string | null; payload: Uint8Array | null }> {
    const fail = (problem: string) => ({ problem, payload: null });
    const fileSize = (await handle.stat()).size;
    if (fileSize < fixedHeaderBytes) return fail(`it has ${fileSize} bytes, less than the ${fixedHeaderBytes}-byte header (truncated)`);

    const header = await readExactly(handle, fixedHeaderBytes, 0);
    if (!header.subarray(0, 8).equals(magic)) return fail("it does not start with the NESSOPFX magic");
    const version = header.readUInt32LE(8);
    if (version !== formatVersion) return fail(`its format version is ${version}, expected ${formatVersion}`);
    const tokenCount = header.readUInt32LE(12);
    if (tokenCount !== prefix.length) return fail(`it holds ${tokenCount} prefix tokens, expected ${prefix.length}`);
    if (!header.subarray(16, 48).equals(this.modelIdentityBytes)) {
      return fail(`it was written for model ${header.subarray(16, 48).toString("hex").slice(0, 16)}…, not this model ${this.modelIdentity.slice(0, 16)}…`);
    }
    const payloadLength = Number(header.readBigUInt64LE(48));
    const expectedSize = fixedHeaderBytes + 4 * tokenCount + payloadLength;
    if (fileSize !== expectedSize) return fail(`it has ${fileSize} bytes but its header describes ${expectedSize} (truncated or corrupted)`);

    const tokens = await readExactly(handle, 4 * tokenCount, fixedHeaderBytes);
    if (!tokens.equals(tokenBytes(prefix))) return fail("its prefix token ids differ from the prompt's");

    const payload = await readExactly(handle, payloadLength, fixedHeaderBytes + 4 * tokenCount);
    const checksum = await sha256(payload);
    if (!checksum.equals(header.subarray(56, 88))) return fail("its payload checksum does not match (corrupted)");
    return { problem: null, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) };
  }

  private async writeEntry(path: string, prefix: readonly number[], state: Uint8Array): Promise<void> {
    const tokens = tokenBytes(prefix);
    const size = fixedHeaderBytes + tokens.byteLength + state.byteLength;
    if (size > this.maxBytes) {
      log.debug(() => `not saving ${prefix.length} prefix tokens: the file would take ${size} bytes, more than maxBytes ${this.maxBytes}`);
      return;
    }
    const header = Buffer.alloc(fixedHeaderBytes);
    magic.copy(header, 0);
    header.writeUInt32LE(formatVersion, 8);
    header.writeUInt32LE(prefix.length, 12);
    this.modelIdentityBytes.copy(header, 16);
    header.writeBigUInt64LE(BigInt(state.byteLength), 48);
    (await sha256(state)).copy(header, 56);

    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const key = path.slice(this.dir.length + 1, -entryExtension.length);
    const temp = join(this.dir, `.${key}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const handle = await open(temp, "wx", 0o600);
    try {
      await writeAll(handle, header, 0);
      await writeAll(handle, tokens, fixedHeaderBytes);
      await writeAll(handle, state, fixedHeaderBytes + tokens.byteLength);
      await handle.sync();
      await handle.close();
      await rename(temp, path);
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw error;
    }
    this.counters.writes++;
    log.debug(() => `saved ${prefix.length} prefix tokens (${size} bytes) to ${path}`);
    await this.evict(path);
  }

  /**
   * Deletes the least recently used entries (by mtime, which a hit refreshes) until the entries
   * fit in maxBytes, and temporary files left by writers that died.
   */
  private async evict(justWritten: string): Promise<void> {
    const entries: { path: string; size: number; mtimeMs: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      const isEntry = entryNamePattern.test(name);
      if (!isEntry && !tempNamePattern.test(name)) continue;
      const info = await stat(path).catch(() => null);
      if (info === null) continue;
      if (isEntry) entries.push({ path, size: info.size, mtimeMs: info.mtimeMs });
      else if (Date.now() - info.mtimeMs > staleTempMs) await removeFile(path);
    }

    let total = entries.reduce((sum, entry) => sum + entry.size, 0);
    if (total <= this.maxBytes) return;
    entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const entry of entries) {
      if (total <= this.maxBytes) break;
      if (entry.path === justWritten) continue;
      await removeFile(entry.path);
      total -= entry.size;
      this.counters.evictions++;
      log.debug(() => `evicted ${entry.path} (${entry.size} bytes) to keep the prompt cache under ${this.maxBytes} bytes`);
    }
  }

  private async reject(path: string, problem: string): Promise<void> {
    this.counters.rejected++;
    log.debug(`ignoring prompt cache file ${path}: ${problem}; deleting it`);
    await removeFile(path);
  }

  private async exists(path: string): Promise<boolean> {
    return (await stat(path).catch(() => null)) !== null;
  }

  /** Marks an entry as recently used; eviction goes by mtime. */
  private async touch(path: string): Promise<void> {
    const now = new Date();
    await utimes(path, now, now).catch(() => {});
  }

  /** Logs the first write failure as a warning and later ones at debug level. */
  private logWriteError(message: string, error: unknown): void {
    const text = `prompt cache: ${message}; generation goes on without it`;
    if (this.writeErrorLogged) {
      log.debug(text, error);
      return;
    }
    this.writeErrorLogged = true;
    log.warn(`${text} (later write errors are logged at debug level)`, error);
  }
}

/** Token ids as u32 little-endian bytes. */
function tokenBytes(tokens: readonly number[]): Buffer {
  const bytes = Buffer.alloc(4 * tokens.length);
  for (let i = 0; i < tokens.length; i++) bytes.writeUInt32LE(tokens[i], 4 * i);
  return bytes;
}

/** sha256 of `data`, hashed in chunks with a yield to the event loop between them. */
async function sha256(data: Uint8Array): Promise<Buffer> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < data.byteLength; offset += hashChunkBytes) {
    if (offset > 0) await new Promise((resolveYield) => setImmediate(resolveYield));
    hash.update(data.subarray(offset, offset + hashChunkBytes));
  }
  return hash.digest();
}

async function readExactly(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done} (expected ${length} bytes from ${position})`);
    done += bytesRead;
  }
  return buffer;
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await handle.write(data, done, data.byteLength - done, position + done);
    done += bytesWritten;
  }
}

async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") log.debug(`deleting ${path} failed`, error);
  });
}

/** False when the NESSO_MCP_PROMPT_CACHE environment variable is 0, false, off or no; the front ends use it. */
export function promptCacheEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.NESSO_MCP_PROMPT_CACHE ?? "").trim().toLowerCase();
  return !["0", "false", "off", "no"].includes(value);
}
