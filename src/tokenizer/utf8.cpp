#include "tokenizer/utf8.h"

namespace reel::utf8 {
namespace {

// Valid range of the second byte for a lead byte (Unicode Table 3-7: excludes overlongs,
// surrogates and code points above U+10FFFF); later continuation bytes are 80..BF.
struct Lead {
  int len;
  uint8_t lo, hi;
};

Lead lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};  // continuation byte or never valid (C0, C1, F5..FF)
}

}  // namespace

Scan scan(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  if (p[0] < 0x80) return {Scan::kValid, 1, p[0]};
  const Lead lead = lead_info(p[0]);
  if (lead.len == 0) return {Scan::kInvalid, 1};
  char32_t cp = p[0] & (0x7F >> lead.len);
  for (int i = 1; i < lead.len; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return {Scan::kIncomplete, static_cast<size_t>(i)};
    const uint8_t lo = i == 1 ? lead.lo : 0x80, hi = i == 1 ? lead.hi : 0xBF;
    if (p[i] < lo || p[i] > hi) return {Scan::kInvalid, static_cast<size_t>(i)};
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  return {Scan::kValid, static_cast<size_t>(lead.len), cp};
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Scan sc = scan(s.substr(i));
    if (sc.kind != Scan::kValid) return false;
    i += sc.len;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Scan sc = scan(s.substr(i));
    if (sc.kind == Scan::kValid) {
      out.append(s.substr(i, sc.len));
    } else {
      out.append(kReplacement);
    }
    i += sc.len;
  }
  return out;
}

std::string take_complete(std::string_view s, size_t* consumed) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const Scan sc = scan(s.substr(i));
    if (sc.kind == Scan::kIncomplete) break;
    if (sc.kind == Scan::kValid) {
      out.append(s.substr(i, sc.len));
    } else {
      out.append(kReplacement);
    }
    i += sc.len;
  }
  *consumed = i;
  return out;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace reel::utf8
