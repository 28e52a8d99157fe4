// The CPU's instruction-set features that decide which kernels run, read once at run time, and
// the Highway target the dispatched kernels use. Printed by `reel --version` and `--verbose`, so
// a user sees which paths run on their machine (e.g. a Cortex-A76 with dotprod, a Pi 4 without).
#pragma once

#include <cstdint>
#include <string>

namespace reel::ops {

struct CpuFeatures {
  std::string arch;  // "aarch64", "x86-64" or "other"
  // aarch64, from the auxiliary vector (AT_HWCAP / AT_HWCAP2).
  bool asimd = false;    // Advanced SIMD (NEON): every aarch64 Linux core
  bool aes = false;      // AES instructions: Highway 1.0.3 needs them for its NEON target
  bool dotprod = false;  // SDOT/UDOT (asimddp): int8 dot products, Cortex-A55/A76 and later
  bool fp16 = false;     // half-precision arithmetic, scalar and vector (fphp and asimdhp)
  bool i8mm = false;     // SMMLA/USDOT int8 matrix multiply (Armv8.6: Neoverse V1, Cortex-A710)
  bool sve = false;      // scalable vectors (not used: Highway's SVE targets are disabled)
  bool sve2 = false;
  // x86-64, from cpuid.
  bool avx2 = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512vnni = false;
};

// The features of the machine running this process (detected once).
const CpuFeatures& cpu_features();

// aarch64 features from AT_HWCAP / AT_HWCAP2 values (the Linux arm64 bit layout), separate from
// getauxval so tests can check the decoding on any architecture.
CpuFeatures arm_features_from_hwcap(uint64_t hwcap, uint64_t hwcap2);

// The features as space-separated names, e.g. "asimd aes dotprod fp16".
std::string feature_names(const CpuFeatures& f);

// Highway's name of the target the dispatched kernels run on this machine (e.g. "NEON",
// "AVX3_DL", "EMU128" on an ARM core without AES).
std::string kernel_target();

// One line for `reel --version` and `--verbose`: "aarch64 (asimd aes dotprod fp16); kernels
// NEON+SDOT" ("+SDOT": the int8 dot-product kernels for dotprod cores run too; "+SDOT+I8MM":
// and the SMMLA kernel for i8mm cores).
std::string cpu_summary();

}  // namespace reel::ops
