// The one logging path of the native engine: lines go to a JS callback (src/engine/native.ts
// forwards them to the stderr logger). Native code never writes to stdout or stderr itself; with
// no callback installed, lines are dropped.
#pragma once

#include <napi.h>

#include <string>

namespace nesso {

// Same numbering as LogLevel in src/logger.ts.
enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

// Queues one line for the JS callback. Safe to call from any thread; it never blocks.
void logMessage(LogLevel level, const std::string& message);

// Installs the callback (a function, or null/undefined to remove it). Runs on the JS thread.
void setLogCallback(Napi::Env env, Napi::Value callback);

}  // namespace nesso
