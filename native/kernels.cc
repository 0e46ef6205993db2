// Run-time choice of the kernel table.

#include <cstdlib>
#include <mutex>
#include <string>

#include "cpu.h"
#include "errors.h"
#include "kernels.h"
#include "log.h"

namespace nesso {

#if !defined(NESSO_HAVE_AVX2)
const Kernels* avx2Kernels() {
  return nullptr;
}
#endif

#if !defined(NESSO_HAVE_AVX512)
const Kernels* avx512Kernels() {
  return nullptr;
}
#endif

#if !defined(NESSO_HAVE_NEON) || !defined(__aarch64__)
const Kernels* neonKernels() {
  return nullptr;
}
#endif

namespace {

const Kernels* supportedAvx512() {
  return cpuHasAvx512() ? avx512Kernels() : nullptr;
}

const Kernels* supportedAvx2() {
  return cpuHasAvx2() ? avx2Kernels() : nullptr;
}

const Kernels& bestKernels() {
  if (const Kernels* kernels = supportedAvx512()) return *kernels;
  if (const Kernels* kernels = supportedAvx2()) return *kernels;
  if (const Kernels* kernels = neonKernels()) return *kernels;
  return portableKernels();
}

// Logs a rejected NESSO_MCP_SIMD value once per distinct value, not on every call.
void warnOnce(const std::string& forced, const Kernels& chosen, const char* reason) {
  static std::mutex mutex;
  static std::string lastWarned;
  std::lock_guard<std::mutex> lock(mutex);
  if (forced == lastWarned) return;
  lastWarned = forced;
  logMessage(LogLevel::Warn, concat("NESSO_MCP_SIMD=", forced, " ", reason, "; using ", chosen.name));
}

}  // namespace

const Kernels& selectKernels() {
  const char* variable = std::getenv("NESSO_MCP_SIMD");
  std::string forced = variable == nullptr ? "" : variable;
  if (forced.empty()) return bestKernels();

  const Kernels* requested = nullptr;
  if (forced == "portable") {
    requested = &portableKernels();
  } else if (forced == "avx2") {
    requested = supportedAvx2();
  } else if (forced == "avx512") {
    requested = supportedAvx512();
  } else if (forced == "neon") {
    requested = neonKernels();
  } else if (forced == "emulated16") {
    requested = &emulatedKernels(16);
  } else if (forced == "emulated4") {
    requested = &emulatedKernels(4);
  } else {
    warnOnce(forced, bestKernels(), "is not one of portable, avx2, avx512, neon, emulated16, emulated4");
    return bestKernels();
  }
  if (requested == nullptr) {
    warnOnce(forced, bestKernels(), "is not supported by this CPU or build");
    return bestKernels();
  }
  return *requested;
}

}  // namespace nesso
