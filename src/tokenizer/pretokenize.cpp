#include "tokenizer/pretokenize.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/uniset.h>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace reel::pretok {
namespace {

// Character classes the regexes distinguish. \r and \n are whitespace with a class of their
// own because several alternatives single them out. Combining marks (\p{M}) are "other" to
// Qwen2's regex and extend letter runs in Qwen3.5's.
enum Class : uint8_t { kLetter, kNumber, kSpace, kNewline, kOther, kMark };

// Letters and numbers that HF tokenizers' Oniguruma (Unicode 16.0 data) knows but ICU 72
// (Unicode 15.0) leaves unassigned: the Unicode 15.1 and 16.0 additions. Found by comparing
// the \p{L} / \p{N} sets of `tokenizers` with ICU's over all code points. A newer ICU
// agrees with these, so the table only matters where the system ICU is older.
struct Range {
  char32_t lo, hi;
};
constexpr Range kNewLetters[] = {
    {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},   {0x105C0, 0x105F3},
    {0x10D4A, 0x10D65}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x11380, 0x11389},
    {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113B7},
    {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0}, {0x13460, 0x143FA},
    {0x16100, 0x1611D}, {0x16D40, 0x16D6C}, {0x18CFF, 0x18CFF}, {0x1E5D0, 0x1E5ED},
    {0x1E5F0, 0x1E5F0}, {0x2EBF0, 0x2EE5D},
};
constexpr Range kNewNumbers[] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x16130, 0x16139},
    {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1E5F1, 0x1E5FA},
};

// Combining marks (\p{M}) of Unicode 15.1 and 16.0, unassigned in ICU 72, found the same way.
constexpr Range kNewMarks[] = {
    {0x0897, 0x0897},   {0x10D69, 0x10D6D}, {0x10EFC, 0x10EFC}, {0x113B8, 0x113C0},
    {0x113C2, 0x113C2}, {0x113C5, 0x113C5}, {0x113C7, 0x113CA}, {0x113CC, 0x113D0},
    {0x113D2, 0x113D2}, {0x113E1, 0x113E2}, {0x11F5A, 0x11F5A}, {0x1611E, 0x1612F},
    {0x1E5EE, 0x1E5EF},
};

template <size_t N>
bool in(const Range (&table)[N], char32_t cp) {
  for (const Range& r : table) {
    if (cp >= r.lo && cp <= r.hi) return true;
  }
  return false;
}

struct Char {
  char32_t cp;
  uint32_t off;  // byte offset in the text
  Class cls;
};

Class classify(char32_t cp) {
  if (cp < 0x80) {
    if (cp == '\r' || cp == '\n') return kNewline;
    if (cp == ' ' || (cp >= '\t' && cp <= 0x0C)) return kSpace;
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    return kOther;
  }
  // Oniguruma's \s (used by HF tokenizers) is the White_Space property: 0x85, Zs, Zl, Zp.
  if (u_isUWhiteSpace(static_cast<UChar32>(cp))) return kSpace;
  const uint32_t mask = U_MASK(u_charType(static_cast<UChar32>(cp)));
  if (mask & U_GC_L_MASK) return kLetter;
  if (mask & U_GC_N_MASK) return kNumber;
  if (mask & U_GC_M_MASK) return kMark;
  // Only unassigned code points can be newer letters, numbers or marks.
  if (cp >= 0x0897 && (mask & U_GC_CN_MASK)) {
    if (in(kNewLetters, cp)) return kLetter;
    if (in(kNewNumbers, cp)) return kNumber;
    if (in(kNewMarks, cp)) return kMark;
  }
  return kOther;
}

std::vector<Char> decode(std::string_view text) {
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const utf8::Scan sc = utf8::scan(text.substr(i));
    // Tokenizer::encode makes text valid UTF-8 before it is split.
    if (sc.kind != utf8::Scan::kValid) throw InternalError("tokenizer: split given invalid UTF-8");
    chars.push_back({sc.cp, static_cast<uint32_t>(i), classify(sc.cp)});
    i += sc.len;
  }
  return chars;
}

// Case-insensitive comparison of a character with an ASCII lowercase letter, as Oniguruma
// folds case: U+017F LATIN SMALL LETTER LONG S folds to 's'.
bool folds_to(char32_t cp, char lower) {
  if (cp < 0x80) return static_cast<char>(cp | 0x20) == lower;
  return cp == 0x17F && lower == 's';
}

class Scanner {
 public:
  Scanner(const std::vector<Char>& c, Regex regex)
      : c_(c), n_(c.size()), marks_join_letters_(regex == Regex::kQwen35) {}

  // Length in characters of the regex match at i (always > 0 for i < n).
  size_t match(size_t i) const {
    if (size_t len = contraction(i)) return len;
    if (size_t len = letters(i)) return len;
    if (cls(i) == kNumber) return 1;
    if (size_t len = punctuation(i)) return len;
    return whitespace(i);
  }

 private:
  Class cls(size_t i) const { return i < n_ ? c_[i].cls : kOther; }
  bool space(size_t i) const { return i < n_ && (c_[i].cls == kSpace || c_[i].cls == kNewline); }
  size_t run_of(size_t i, Class k) const {
    size_t j = i;
    while (j < n_ && c_[j].cls == k) ++j;
    return j - i;
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  size_t contraction(size_t i) const {
    if (c_[i].cp != '\'' || i + 1 >= n_) return 0;
    const char32_t a = c_[i + 1].cp;
    if (folds_to(a, 's') || folds_to(a, 't') || folds_to(a, 'm') || folds_to(a, 'd')) return 2;
    if (i + 2 >= n_) return 0;
    const char32_t b = c_[i + 2].cp;
    if ((folds_to(a, 'r') || folds_to(a, 'v')) && folds_to(b, 'e')) return 3;
    if (folds_to(a, 'l') && folds_to(b, 'l')) return 3;
    return 0;
  }

  // A letter-run character: \p{L}, or [\p{L}\p{M}] for Qwen3.5.
  bool letter(size_t i) const {
    return i < n_ && (c_[i].cls == kLetter || (marks_join_letters_ && c_[i].cls == kMark));
  }
  // A punctuation-run character: [^\s\p{L}\p{N}], or [^\s\p{L}\p{M}\p{N}] for Qwen3.5.
  bool other(size_t i) const {
    return i < n_ && (c_[i].cls == kOther || (!marks_join_letters_ && c_[i].cls == kMark));
  }
  size_t letter_run(size_t i) const {
    size_t j = i;
    while (letter(j)) ++j;
    return j - i;
  }

  // [^\r\n\p{L}\p{N}]?\p{L}+ (Qwen3.5: [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+). A mark as the
  // optional first character of Qwen3.5's form is a letter-run character anyway.
  size_t letters(size_t i) const {
    if (letter(i)) return letter_run(i);
    const Class k = cls(i);
    if ((k == kSpace || k == kOther || k == kMark) && letter(i + 1)) return 1 + letter_run(i + 1);
    return 0;
  }

  // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (Qwen3.5: marks excluded from the run)
  size_t punctuation(size_t i) const {
    size_t j = i;
    if (c_[j].cp == ' ' && other(j + 1)) ++j;
    const size_t start = j;
    while (other(j)) ++j;
    if (j == start) return 0;
    return j + run_of(j, kNewline) - i;
  }

  // \s*[\r\n]+ | \s+(?!\S) | \s+, with c_[i] whitespace.
  size_t whitespace(size_t i) const {
    size_t end = i, last_newline = SIZE_MAX;
    for (; space(end); ++end) {
      if (c_[end].cls == kNewline) last_newline = end;
    }
    // \s*[\r\n]+: \s* backtracks to just before the last newline of the run.
    if (last_newline != SIZE_MAX) return last_newline + 1 - i;
    // \s+(?!\S): the whole run at the end of text, else all but its last character.
    if (end == n_) return end - i;
    if (end - i >= 2) return end - 1 - i;
    return end - i;  // \s+
  }

  const std::vector<Char>& c_;
  size_t n_;
  bool marks_join_letters_;
};

// HF tokenizers normalizes with the `unicode-normalization-alignments` crate, whose tables
// are Unicode 9.0: characters assigned later have no combining class or decomposition there,
// so they are left alone and block reordering and composition. ICU's NFC restricted to the
// characters of Unicode 9.0 behaves the same (later characters become span boundaries).
const icu::Normalizer2& hf_nfc() {
  static const icu::Normalizer2* const norm = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
    auto* v9 = new icu::UnicodeSet(icu::UnicodeString(u"[:Age=9.0:]"), status);
    // ICU's data is part of the installation: missing, the system failed us, not the input.
    if (U_FAILURE(status)) throw IoError("tokenizer: ICU NFC data unavailable");
    v9->freeze();
    return new icu::FilteredNormalizer2(*nfc, *v9);  // both live for the whole process
  }();
  return *norm;
}

}  // namespace

std::string nfc(std::string_view text) {
  bool ascii = true;
  for (char ch : text) ascii &= static_cast<uint8_t>(ch) < 0x80;
  if (ascii) return std::string(text);
  const icu::Normalizer2& norm = hf_nfc();
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  UErrorCode status = U_ZERO_ERROR;
  if (norm.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  norm.normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) {
    // The input is valid UTF-8 by now, so only memory can run out.
    if (status == U_MEMORY_ALLOCATION_ERROR) throw IoError("tokenizer: out of memory");
    throw InternalError(std::string("tokenizer: NFC normalization failed: ") + u_errorName(status));
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, Regex regex) {
  const std::vector<Char> chars = decode(text);
  const Scanner scanner(chars, regex);
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < chars.size();) {
    const size_t j = i + scanner.match(i);
    const size_t from = chars[i].off, to = j < chars.size() ? chars[j].off : text.size();
    pieces.push_back(text.substr(from, to - from));
    i = j;
  }
  return pieces;
}

}  // namespace reel::pretok
