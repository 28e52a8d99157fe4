// libFuzzer target for the GGUF reader: any input must either parse or throw reel::Error, and
// everything a successful parse exposes must be safe to read.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"

namespace {

using reel::gguf::File;

// Calls every getter on every key; type mismatches throw reel::Error, which is fine.
void read_metadata(const File& f) {
  volatile size_t sink = 0;
  for (const reel::gguf::KeyValue& kv : f.metadata()) {
    const std::string_view k = kv.key;
    auto attempt = [&](auto&& get) {
      try {
        get();
      } catch (const reel::Error&) {
      }
    };
    attempt([&] { sink = sink + f.get_u32(k); });
    attempt([&] { sink = sink + f.get_u64(k); });
    attempt([&] { sink = sink + static_cast<size_t>(f.get_i64(k)); });
    attempt([&] { sink = sink + static_cast<size_t>(f.get_f32(k) != 0); });
    attempt([&] { sink = sink + f.get_bool(k); });
    attempt([&] { sink = sink + f.get_str(k).size(); });
    attempt([&] {
      for (std::string_view s : f.get_str_array(k)) sink = sink + (s.empty() ? 0 : s.back());
    });
    attempt([&] { sink = sink + f.get_int_array(k).size(); });
    attempt([&] { sink = sink + f.get_f32_array(k).size(); });
    attempt([&] { sink = sink + f.get_bool_array(k).size(); });
  }
}

// Dequantizes (a bounded prefix of) every tensor, so ASan checks the data views.
void read_tensors(const File& f) {
  constexpr int64_t kMaxElements = 1 << 16;
  std::vector<float> row;
  for (const reel::gguf::TensorInfo& t : f.tensors()) {
    if (f.find_tensor(t.name) != &t) __builtin_trap();
    if (!reel::type_info(t.type).supported) continue;
    const int64_t ne0 = t.ne[0];
    if (ne0 > kMaxElements) continue;
    row.resize(static_cast<size_t>(ne0));
    const size_t stride = reel::row_bytes(t.type, ne0);
    for (int64_t r = 0; r < t.rows() && r * ne0 < kMaxElements; ++r) {
      reel::dequantize_row_ref(t.type, t.data + r * stride, row.data(), ne0);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::unique_ptr<File> f = File::from_memory(data, size, "fuzz");
    read_metadata(*f);
    read_tensors(*f);
  } catch (const reel::Error&) {
    // Rejected input: the expected outcome for almost everything the fuzzer generates.
  }
  return 0;
}
