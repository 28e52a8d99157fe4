#include "ops/cpu_features.h"

#include <hwy/targets.h>

#include "ops/kernels.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace reel::ops {
namespace {

// Linux arm64 hwcap bits (arch/arm64/include/uapi/asm/hwcap.h), spelled out so the decoding
// compiles and is tested on every architecture.
constexpr uint64_t kHwcapAsimd = 1u << 1;
constexpr uint64_t kHwcapAes = 1u << 3;
constexpr uint64_t kHwcapFphp = 1u << 9;
constexpr uint64_t kHwcapAsimdhp = 1u << 10;
constexpr uint64_t kHwcapAsimddp = 1u << 20;
constexpr uint64_t kHwcapSve = 1u << 22;
constexpr uint64_t kHwcap2Sve2 = 1u << 1;
constexpr uint64_t kHwcap2I8mm = 1u << 13;

CpuFeatures detect() {
#if defined(__aarch64__) && defined(__linux__)
  return arm_features_from_hwcap(getauxval(AT_HWCAP), getauxval(AT_HWCAP2));
#elif defined(__x86_64__)
  CpuFeatures f;
  f.arch = "x86-64";
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  return f;
#else
  CpuFeatures f;
  f.arch = "other";
  return f;
#endif
}

}  // namespace

CpuFeatures arm_features_from_hwcap(uint64_t hwcap, uint64_t hwcap2) {
  CpuFeatures f;
  f.arch = "aarch64";
  f.asimd = hwcap & kHwcapAsimd;
  f.aes = hwcap & kHwcapAes;
  f.dotprod = hwcap & kHwcapAsimddp;
  // Half-precision arithmetic needs both the scalar (fphp) and the vector (asimdhp) forms;
  // the kernels that would use it are vector ones, and the two come together on real cores.
  f.fp16 = (hwcap & kHwcapFphp) && (hwcap & kHwcapAsimdhp);
  f.sve = hwcap & kHwcapSve;
  f.sve2 = hwcap2 & kHwcap2Sve2;
  f.i8mm = hwcap2 & kHwcap2I8mm;
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string feature_names(const CpuFeatures& f) {
  const std::pair<bool, const char*> named[] = {
      {f.asimd, "asimd"}, {f.aes, "aes"},         {f.dotprod, "dotprod"},
      {f.fp16, "fp16"},   {f.i8mm, "i8mm"},       {f.sve, "sve"},
      {f.sve2, "sve2"},   {f.avx2, "avx2"},       {f.f16c, "f16c"},
      {f.avx512f, "avx512f"}, {f.avx512vnni, "avx512vnni"}};
  std::string out;
  for (const auto& [on, name] : named) {
    if (!on) continue;
    if (!out.empty()) out += ' ';
    out += name;
  }
  return out;
}

std::string kernel_target() {
  // With a single compiled target, Highway's dispatch is static: that target's code runs
  // whatever the run-time check says. So on aarch64, where Debian's Highway 1.0.3 compiles only
  // NEON (and its run-time check wants AES), a core without AES still runs the NEON kernels,
  // which, built for the baseline ARMv8-A, contain no AES instruction.
  if ((HWY_TARGETS & (HWY_TARGETS - 1)) == 0) return hwy::TargetName(HWY_STATIC_TARGET);
  // Else the best target that is both compiled in and supported here: what
  // HWY_DYNAMIC_DISPATCH picks (targets are bits, better ones lower).
  const int64_t usable = hwy::SupportedTargets() & HWY_TARGETS;
  if (usable == 0) return "none";
  const int64_t best = usable & -usable;
  return hwy::TargetName(best);
}

std::string cpu_summary() {
  const CpuFeatures& f = cpu_features();
  std::string kernels = kernel_target();
  // The aarch64 int8 kernels chosen at run time beside Highway's target (matmul_arm-inl.h).
  const std::string int8 = detail::arm_int8_kernels();
  if (int8 == "sdot") kernels += "+SDOT";
  if (int8 == "sdot+i8mm") kernels += "+SDOT+I8MM";
  return f.arch + " (" + feature_names(f) + "); kernels " + kernels;
}

}  // namespace reel::ops
