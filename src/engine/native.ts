// Loads the native addon (native/build/Release/nesso_native.node) once, routes its log lines to the
// stderr logger and maps its errors onto NessoError codes. No other file touches the addon
// directly: the rest of the package uses the NativeAddon this file returns.
//
// The environment variable NESSO_MCP_ADDON names another addon file to load instead, for example
// the portable-only build native/build-portable/Release/nesso_native.node that `npm test` checks.
// A relative path resolves against the current directory. The variable is read once, at the first
// load, and a missing or unloadable file is an error naming the variable and the path, with no
// fallback to the default build.
//
// Native errors arrive as `Error("[CODE] operation: detail")`; the code becomes NessoError.code
// and the rest becomes the message.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DisposedError, NessoError, type NessoErrorCode } from "../errors.js";
import { createLogger, LogLevel } from "../logger.js";
import type {
  KvCacheType,
  NativeAddon,
  NativeContext,
  NativeEvalResult,
  NativeGrammarTables,
  NativeGrammarTrie,
  NativeGrammarVocabulary,
  NativeModel,
  NativeModelConfig,
  NativeModelSpec,
  NativeSamplerParams,
  NativeTesting,
  NativeTokenMasker,
} from "./native-api.js";

const log = createLogger("native");

const addonRelativePath = join("native", "build", "Release", "nesso_native.node");

/** Environment variable that names an addon file to load in place of the default build. */
export const addonPathVariable = "NESSO_MCP_ADDON";

/** Codes the native side puts in its "[CODE] …" prefix. */
const nativeErrorCodes: ReadonlySet<NessoErrorCode> = new Set<NessoErrorCode>([
  "INVALID_ARGUMENT",
  "MODEL_NOT_FOUND",
  "INVALID_MODEL",
  "UNSUPPORTED",
  "CONTEXT_FULL",
  "DISPOSED",
  "INTERNAL",
]);

/**
 * Converts an error thrown or rejected by the addon into a NessoError (DisposedError for code
 * DISPOSED). Errors without a "[CODE] " prefix are returned unchanged.
 */
export function mapNativeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const match = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(error.message);
  if (!match || !nativeErrorCodes.has(match[1] as NessoErrorCode)) return error;
  const code = match[1] as NessoErrorCode;
  const message = match[2];
  if (code === "DISPOSED") return new DisposedError(message);
  return new NessoError(code, message, { cause: error });
}

function callNative<T>(operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    throw mapNativeError(error);
  }
}

async function callNativeAsync<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw mapNativeError(error);
  }
}

/** A NativeContext whose failures are NessoErrors. */
class MappedContext implements NativeContext {
  constructor(private readonly raw: NativeContext) {}

  get contextSize(): number {
    return this.raw.contextSize;
  }

  get length(): number {
    return this.raw.length;
  }

  get kvCacheType(): KvCacheType {
    return this.raw.kvCacheType;
  }

  eval(tokens: Int32Array, options?: { chunkSize?: number }): Promise<NativeEvalResult> {
    return callNativeAsync(() => this.raw.eval(tokens, options));
  }

  getLogits(): Float32Array {
    return callNative(() => this.raw.getLogits());
  }

  sample(params: NativeSamplerParams, mask?: Uint8Array | null): number {
    return callNative(() => this.raw.sample(params, mask));
  }

  rewind(n: number): void {
    callNative(() => this.raw.rewind(n));
  }

  cancel(): void {
    callNative(() => this.raw.cancel());
  }

  saveState(n?: number): Promise<Uint8Array> {
    return callNativeAsync(() => this.raw.saveState(n));
  }

  loadState(state: Uint8Array): Promise<void> {
    return callNativeAsync(() => this.raw.loadState(state));
  }

  dispose(): void {
    callNative(() => this.raw.dispose());
  }
}

/** A NativeModel whose failures are NessoErrors and whose contexts are MappedContexts. */
class MappedModel implements NativeModel {
  constructor(private readonly raw: NativeModel) {}

  get config(): NativeModelConfig {
    return this.raw.config;
  }

  get threads(): number {
    return this.raw.threads;
  }

  createContext(options: { contextSize: number; kvCacheType?: KvCacheType }): NativeContext {
    return new MappedContext(callNative(() => this.raw.createContext(options)));
  }

  dispose(): void {
    callNative(() => this.raw.dispose());
  }
}

function mapTesting(raw: NativeTesting): NativeTesting {
  return {
    rmsNorm: (x, weight, eps) => callNative(() => raw.rmsNorm(x, weight, eps)),
    rope: (x, position, theta, traditional, freqFactors) =>
      callNative(() => raw.rope(x, position, theta, traditional, freqFactors)),
    attention: (q, k, v, nHeads, nKvHeads, headDim, T, kvType) =>
      callNative(() => raw.attention(q, k, v, nHeads, nKvHeads, headDim, T, kvType)),
    matVec: (weights, dtype, rows, cols, x) => callNative(() => raw.matVec(weights, dtype, rows, cols, x)),
    matMul: (weights, dtype, rows, cols, x, tokens) =>
      callNative(() => raw.matMul(weights, dtype, rows, cols, x, tokens)),
    softmax: (x) => callNative(() => raw.softmax(x)),
    siluMul: (gate, up) => callNative(() => raw.siluMul(gate, up)),
    quantUnpack: (packed, bits, count) => callNative(() => raw.quantUnpack(packed, bits, count)),
    quantMatVec: (packed, scales, biases, bits, groupSize, rows, cols, x) =>
      callNative(() => raw.quantMatVec(packed, scales, biases, bits, groupSize, rows, cols, x)),
    quantMatMul: (packed, scales, biases, bits, groupSize, rows, cols, x, tokens) =>
      callNative(() => raw.quantMatMul(packed, scales, biases, bits, groupSize, rows, cols, x, tokens)),
    quantDequantize: (packed, scales, biases, bits, groupSize, rows, cols) =>
      callNative(() => raw.quantDequantize(packed, scales, biases, bits, groupSize, rows, cols)),
  };
}

/** A NativeTokenMasker whose failures are NessoErrors. */
class MappedTokenMasker implements NativeTokenMasker {
  constructor(private readonly raw: NativeTokenMasker) {}

  get stateCount(): number {
    return this.raw.stateCount;
  }

  computeMask(stacks: Uint32Array, accepting: boolean, mask: Uint8Array): void {
    callNative(() => this.raw.computeMask(stacks, accepting, mask));
  }

  dispose(): void {
    callNative(() => this.raw.dispose());
  }
}

/** The addon's exports as loaded: the token-mask classes are constructors there. */
type RawNativeAddon = Omit<NativeAddon, "createGrammarVocabulary" | "createTokenMasker"> & {
  GrammarVocabulary: new (trie: NativeGrammarTrie) => NativeGrammarVocabulary;
  TokenMasker: new (grammar: NativeGrammarTables, vocabulary: NativeGrammarVocabulary, options?: { stateLimit?: number }) => NativeTokenMasker;
};

/** Candidate package roots: src/engine/ under tsx, dist/src/engine/ when compiled. */
function addonCandidates(): string[] {
  const moduleDir = dirname(fileURLToPath(import.meta.url));
  return [resolve(moduleDir, "../.."), resolve(moduleDir, "../../..")].map((root) => join(root, addonRelativePath));
}

function forwardLogLine(level: number, message: string): void {
  switch (level as LogLevel) {
    case LogLevel.Error:
      log.error(message);
      break;
    case LogLevel.Warn:
      log.warn(message);
      break;
    case LogLevel.Info:
      log.info(message);
      break;
    default:
      log.debug(message);
  }
}

let loaded: NativeAddon | undefined;

/** Loads the addon that `npm run build:native` wrote, trying each candidate package root. */
function requireDefaultAddon(): { raw: RawNativeAddon; path: string } {
  const candidates = addonCandidates();
  const path = candidates.find((candidate) => existsSync(candidate));
  if (path === undefined) {
    throw new NessoError(
      "INTERNAL",
      `native addon not found (looked for ${candidates.join(" and ")}); build it with \`npm run build:native\``,
    );
  }

  try {
    return { raw: createRequire(import.meta.url)(path) as RawNativeAddon, path };
  } catch (error) {
    throw new NessoError(
      "INTERNAL",
      `native addon ${path} failed to load: ${(error as Error).message} (rebuild it with \`npm run build:native\`)`,
      { cause: error },
    );
  }
}

/** Loads the addon file that NESSO_MCP_ADDON names. */
function requireOverrideAddon(setting: string): { raw: RawNativeAddon; path: string } {
  const path = resolve(setting);
  const fix = `point ${addonPathVariable} at a nesso_native.node built for this Node.js, or unset it to use the default build`;
  if (!existsSync(path)) {
    throw new NessoError("INVALID_ARGUMENT", `native addon not found: ${addonPathVariable}=${setting} names no file (${path}); ${fix}`);
  }

  let raw: RawNativeAddon;
  try {
    raw = createRequire(import.meta.url)(path) as RawNativeAddon;
  } catch (error) {
    throw new NessoError(
      "INVALID_ARGUMENT",
      `native addon ${path} from ${addonPathVariable} failed to load: ${(error as Error).message}; ${fix}`,
      { cause: error },
    );
  }
  if (typeof raw.loadModel !== "function" || typeof raw.simdPath !== "function" || typeof raw.setLogger !== "function") {
    throw new NessoError(
      "INVALID_ARGUMENT",
      `native addon ${path} from ${addonPathVariable} is not nesso_native.node (it exports no loadModel, simdPath or setLogger); ${fix}`,
    );
  }
  return { raw, path };
}

/**
 * Returns the native addon, loading it on first use and installing the log callback. The file is
 * the one NESSO_MCP_ADDON names, else the default build. Throws an INTERNAL NessoError naming the
 * paths it tried when the default addon has not been built, and an INVALID_ARGUMENT NessoError
 * naming the variable and the path when the NESSO_MCP_ADDON file is missing or fails to load.
 */
export function loadNativeAddon(): NativeAddon {
  if (loaded) return loaded;
  const setting = process.env[addonPathVariable];
  const { raw, path } = setting ? requireOverrideAddon(setting) : requireDefaultAddon();
  raw.setLogger(forwardLogLine);

  loaded = {
    loadModel: async (spec: NativeModelSpec) => new MappedModel(await callNativeAsync(() => raw.loadModel(spec))),
    // null restores the default route to the "native" logger, which filters by level itself.
    setLogger: (callback) => callNative(() => raw.setLogger(callback ?? forwardLogLine)),
    simdPath: () => raw.simdPath(),
    physicalCores: () => raw.physicalCores(),
    testing: mapTesting(raw.testing),
    createGrammarVocabulary: (trie) => callNative(() => new raw.GrammarVocabulary(trie)),
    createTokenMasker: (grammar, vocabulary, options) =>
      new MappedTokenMasker(callNative(() => new raw.TokenMasker(grammar, vocabulary, options))),
  };
  log.debug(() => `loaded ${path} (${raw.simdPath()} kernels, ${raw.physicalCores()} physical cores)`);
  return loaded;
}
