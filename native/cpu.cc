#include "cpu.h"

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace nesso {

bool cpuHasAvx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpuHasAvx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return cpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

namespace {

int hardwareThreads() {
  unsigned count = std::thread::hardware_concurrency();
  return count == 0 ? 1 : int(count);
}

#if defined(__linux__)
// Counts distinct (package, core) pairs in sysfs; returns 0 when the topology is unreadable.
int linuxPhysicalCores() {
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < 4096; cpu++) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream coreFile(base + "core_id");
    if (!coreFile) {
      if (cpu >= hardwareThreads()) break;
      continue;
    }
    std::ifstream packageFile(base + "physical_package_id");
    std::string core, package;
    coreFile >> core;
    packageFile >> package;
    cores.emplace(package, core);
  }
  return int(cores.size());
}
#endif

}  // namespace

int physicalCoreCount() {
  int count = 0;
#if defined(__linux__)
  count = linuxPhysicalCores();
#elif defined(__APPLE__)
  int value = 0;
  size_t size = sizeof value;
  if (sysctlbyname("hw.physicalcpu", &value, &size, nullptr, 0) == 0) count = value;
#endif
  int threads = hardwareThreads();
  if (count <= 0 || count > threads) count = threads;
  return count;
}

}  // namespace nesso
