// CPU facts: the SIMD extensions that kernel dispatch checks, and the physical core count that
// sizes the default thread pool.
#pragma once

namespace nesso {

bool cpuHasAvx2();    // AVX2, FMA and F16C
bool cpuHasAvx512();  // AVX-512 F, BW and VL, plus FMA and F16C

// Physical cores (not hardware threads), at least 1.
int physicalCoreCount();

}  // namespace nesso
