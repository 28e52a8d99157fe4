// CPU feature detection: the decoding of Linux arm64 hwcap bits (on any architecture), and,
// under qemu-aarch64, that the features read at run time are those of the emulated CPU model
// named by QEMU_CPU (tests/ops/CMakeLists.txt runs this for cortex-a72, cortex-a76 and max).
// The same Highway targets as reel_ops (src/ops/CMakeLists.txt), so HWY_TARGETS here is theirs.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "ops/cpu_features.h"
#include "ops/ops.h"

namespace reel::ops {
namespace {

// Linux arm64 AT_HWCAP bits as a Cortex-A72 (fp asimd aes pmull sha1 sha2 crc32 cpuid) and a
// Cortex-A76 (adding atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp) report them.
constexpr uint64_t kA72Hwcap = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x800;
constexpr uint64_t kA76Hwcap =
    kA72Hwcap | (1u << 8) | (1u << 9) | (1u << 10) | (1u << 12) | (1u << 15) | (1u << 16) |
    (1u << 20);

TEST(CpuFeatures, DecodesHwcapBits) {
  const CpuFeatures a72 = arm_features_from_hwcap(kA72Hwcap, 0);
  EXPECT_EQ(a72.arch, "aarch64");
  EXPECT_EQ(feature_names(a72), "asimd aes");
  const CpuFeatures a76 = arm_features_from_hwcap(kA76Hwcap, 0);
  EXPECT_EQ(feature_names(a76), "asimd aes dotprod fp16");
  // Armv8.6 with SVE2: i8mm is in AT_HWCAP2 (bit 13), sve2 bit 1, sve in AT_HWCAP bit 22.
  const CpuFeatures v2 = arm_features_from_hwcap(kA76Hwcap | (1u << 22), (1u << 13) | (1u << 1));
  EXPECT_EQ(feature_names(v2), "asimd aes dotprod fp16 i8mm sve sve2");
  // Scalar half precision without the vector form is not fp16 for the kernels.
  EXPECT_FALSE(arm_features_from_hwcap(kA72Hwcap | (1u << 9), 0).fp16);
  // A core without the crypto extension (e.g. some Cortex-A53/A55 SoCs).
  EXPECT_EQ(feature_names(arm_features_from_hwcap(0x3, 0)), "asimd");
}

TEST(CpuFeatures, SummaryNamesArchitectureAndKernels) {
  const std::string s = cpu_summary();
  EXPECT_EQ(s.rfind(cpu_features().arch + " (", 0), 0u) << s;
  EXPECT_NE(s.find("; kernels " + kernel_target()), std::string::npos) << s;
  EXPECT_NE(kernel_target(), "none");
}

// Under qemu-aarch64 the guest sees QEMU_CPU (qemu passes the environment through).
TEST(CpuFeatures, MatchEmulatedCpuModel) {
  const char* model = std::getenv("QEMU_CPU");
  if (!model || cpu_features().arch != "aarch64")
    GTEST_SKIP() << "not under qemu-aarch64 with QEMU_CPU set";
  const std::string m = model;
  const CpuFeatures& f = cpu_features();
  EXPECT_TRUE(f.asimd);
  // Every qemu model here has the crypto extension, so Highway's NEON target runs.
  EXPECT_TRUE(f.aes);
  EXPECT_EQ(kernel_target(), "NEON");
  if (m == "cortex-a72") {
    EXPECT_FALSE(f.dotprod);
    EXPECT_FALSE(f.fp16);
    EXPECT_FALSE(f.i8mm);
  } else if (m == "cortex-a76") {
    EXPECT_TRUE(f.dotprod);
    EXPECT_TRUE(f.fp16);
    EXPECT_FALSE(f.i8mm);
    EXPECT_FALSE(f.sve);
  } else if (m == "max") {
    EXPECT_TRUE(f.dotprod);
    EXPECT_TRUE(f.fp16);
    EXPECT_TRUE(f.i8mm);
    EXPECT_TRUE(f.sve);
  } else {
    GTEST_SKIP() << "no expectations for QEMU_CPU=" << m;
  }
}

// A core without AES (no qemu model lacks it) makes Highway 1.0.3 report no NEON target. On
// aarch64 only NEON is compiled, dispatch is then static, and the NEON kernels must still run
// and give the same results.
TEST(CpuFeatures, KernelsRunWhenHighwayReportsNoNeon) {
  if ((HWY_TARGETS & (HWY_TARGETS - 1)) != 0)
    GTEST_SKIP() << "several Highway targets compiled: dispatch is dynamic here";
  std::vector<float> x(1000), w(1000, 1.5f), normal(1000), without_aes(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 37) - 18.0f;
  rms_norm(x.data(), w.data(), normal.data(), 1, 1000, 1e-6f);
  hwy::SetSupportedTargetsForTest(HWY_EMU128 | HWY_SCALAR);  // what a core without AES reports
  EXPECT_EQ(hwy::SupportedTargets() & HWY_TARGETS, 0);
  EXPECT_EQ(kernel_target(), hwy::TargetName(HWY_STATIC_TARGET));
  rms_norm(x.data(), w.data(), without_aes.data(), 1, 1000, 1e-6f);
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_EQ(normal, without_aes);  // the same code ran: bit-identical
}

}  // namespace
}  // namespace reel::ops
