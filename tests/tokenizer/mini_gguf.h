// Writes small tokenizer-only GGUF files for tests: a byte-level vocabulary with a few merges
// and added tokens, whose keys tests can drop or corrupt one at a time.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace reel::testing {

using StrArray = std::vector<std::string>;
using I32Array = std::vector<int32_t>;
using KvValue = std::variant<std::string, uint32_t, StrArray, I32Array>;

class MiniGguf {
 public:
  std::map<std::string, KvValue> kv;

  // Writes the file and returns its path (unique per call).
  std::string write() const {
    static int counter = 0;
    const auto path =
        std::filesystem::temp_directory_path() /
        ("reel-tok-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf");
    std::string b;
    put(b, uint32_t{0x46554747});
    put(b, uint32_t{3});
    put(b, uint64_t{0});
    put(b, static_cast<uint64_t>(kv.size()));
    for (const auto& [key, value] : kv) {
      put_str(b, key);
      if (const auto* s = std::get_if<std::string>(&value)) {
        put(b, uint32_t{8});
        put_str(b, *s);
      } else if (const auto* u = std::get_if<uint32_t>(&value)) {
        put(b, uint32_t{4});
        put(b, *u);
      } else if (const auto* sa = std::get_if<StrArray>(&value)) {
        put(b, uint32_t{9});
        put(b, uint32_t{8});
        put(b, static_cast<uint64_t>(sa->size()));
        for (const auto& s : *sa) put_str(b, s);
      } else {
        const auto& ia = std::get<I32Array>(value);
        put(b, uint32_t{9});
        put(b, uint32_t{5});
        put(b, static_cast<uint64_t>(ia.size()));
        for (int32_t v : ia) put(b, v);
      }
    }
    std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
    return path.string();
  }

 private:
  template <typename T>
  static void put(std::string& b, T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void put_str(std::string& b, const std::string& s) {
    put(b, static_cast<uint64_t>(s.size()));
    b += s;
  }
};

}  // namespace reel::testing
