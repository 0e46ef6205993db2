// The engine layer's public surface.

export { Model, type LoadOptions } from "./model.js";
export { Session, type SessionOptions, type SessionGenerateOptions } from "./session.js";
export { PromptCache, computeModelIdentity, promptCacheEnabled, resolvePromptCacheDir, systemTurnLength, defaultPromptCacheMaxBytes, type PromptCacheOptions, type PromptCacheStats } from "./prompt-cache.js";
export { EngineChatModel } from "./chat-model.js";
export { ChatTemplate, type ChatTemplateOptions } from "./chat-template.js";
export { TextTokenizer, type StreamDecoder } from "./tokenizer.js";
export { StopStringMatcher, stopTokenIds } from "./stop.js";
export { resolveModelConfig, parseConfigText, llama3FrequencyFactors, type ModelConfig } from "./config.js";
export { readSafetensorsHeader, parseSafetensorsHeader, type SafetensorsHeader, type SafetensorsTensor } from "./safetensors.js";
export { readCheckpointTensors, buildModelSpec, findSafetensorsFiles } from "./checkpoint.js";
export type * from "./types.js";
export type { KvCacheType } from "./native-api.js";
export { describeQuantization, type QuantizationConfig } from "./quantization.js";
