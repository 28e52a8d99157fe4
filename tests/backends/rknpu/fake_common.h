// What the fake NPU runtimes share: the call log (one line per call, appended to the file
// REEL_FAKE_NPU_LOG names: `function key=value ...`, strings quoted with \n and " escaped)
// and scripted failures (REEL_FAKE_NPU_FAIL="function=code,function2=code2": that function
// returns that code; for rkllm_run, code "state" makes it report the error callback state).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

namespace reel::fake {

class LogLine {
 public:
  explicit LogLine(const char* function) { s_ << function; }
  ~LogLine() {
    const char* path = std::getenv("REEL_FAKE_NPU_LOG");
    if (!path || !*path) return;
    std::ofstream(path, std::ios::app) << s_.str() << '\n';
  }
  template <typename T>
  LogLine& kv(const char* key, const T& value) {
    s_ << ' ' << key << '=' << value;
    return *this;
  }
  LogLine& str(const char* key, const char* value) {
    s_ << ' ' << key << '=';
    if (!value) {
      s_ << "null";
      return *this;
    }
    s_ << '"';
    for (const char* c = value; *c; ++c) {
      if (*c == '\n')
        s_ << "\\n";
      else if (*c == '"' || *c == '\\')
        s_ << '\\' << *c;
      else
        s_ << *c;
    }
    s_ << '"';
    return *this;
  }
  LogLine& ptr(const char* key, const void* p) { return kv(key, p ? "set" : "null"); }

 private:
  std::ostringstream s_;
};

// The scripted result for `function`, or nullptr: "code" of "function=code".
// The codes are kept per function name, never erased, so a returned pointer stays valid (no
// thread_local: see g_callback_thread in fake_rkllm.cpp).
inline const char* scripted_failure(const char* function) {
  static std::mutex mutex;
  static std::map<std::string, std::string> codes;
  const char* env = std::getenv("REEL_FAKE_NPU_FAIL");
  if (!env) return nullptr;
  std::istringstream in(env);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t eq = item.find('=');
    if (eq != std::string::npos && item.compare(0, eq, function) == 0) {
      const std::lock_guard<std::mutex> lock(mutex);
      std::string& code = codes[function];
      if (code != item.substr(eq + 1)) code = item.substr(eq + 1);
      return code.c_str();
    }
  }
  return nullptr;
}

inline std::string read_text_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace reel::fake
