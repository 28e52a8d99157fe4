#!/usr/bin/env python3
"""Qwen3.5's pre-tokenizer (GGUF `tokenizer.ggml.pre` = "qwen35") against transformers.

Qwen3.5's real vocabulary (248,320 entries) is not to be had offline here (llama.cpp keeps no
ggml-vocab file for it), so this tests the pre-tokenizer and the id mapping with the Qwen2/Qwen3-VL
vocabulary the repo has: transformers' own `Qwen3_5Tokenizer` class built from that vocabulary
and merges (plus the Qwen3-VL added tokens) against Reel's tokenizer reading the same vocabulary
with the pre-tokenizer key set to "qwen35".

Writes tests/fixtures/tokenizer/corpus-qwen35.jsonl, one JSON object per line:
  text   the input; ids  Qwen3_5Tokenizer's ids (special tokens parsed);
  pieces the pre-tokenizer's split of the NFC text (transformers' regex through `tokenizers`),
         for inputs without special tokens
  qwen2_differs  true where Qwen2's pre-tokenizer gives other ids (the inputs that exercise \\p{M})

The regex difference (transformers' tokenization_qwen3_5.PRETOKENIZE_REGEX against Qwen2's): the
letter run is [\\p{L}\\p{M}]+ instead of \\p{L}+ and the punctuation run excludes \\p{M}; the
optional one-character prefix before a letter run is unchanged ([^\\r\\n\\p{L}\\p{N}]).

    python tools/reference/make_qwen35_tokenizer_fixtures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_tokenizer_fixtures as mt  # noqa: E402
import qwen3vl_vocab  # noqa: E402

OUT = HERE.parents[1] / "tests/fixtures/tokenizer/corpus-qwen35.jsonl"

# Combining marks (\p{M}: Mn, Mc, Me) in many scripts, beside letters, digits, spaces,
# punctuation and at the start of text or a line.
MARKS = [
    "e\u0301", "cafe\u0301 au lait", "\u0301", "\u0301abc", " \u0301", "a \u0301b", "1\u0301",
    "!\u0301", "?\u0301!", "\n\u0301x", "x\n\u0301", "'\u0301s", "e\u0301's", "\u20dd", "a\u20dd",
    "\u0301\u0302\u0303", "x\u0301\u0302\u0303y", "z\u0335\u0321a\u0336lgo", "e\u0301\u0301\u0301",
    "\u0915\u093c", "नमस्ते दुनिया", "हिन्दी में लिखा गया पाठ", "क्षत्रिय", "ग्रन्थ", "किं",
    "বাংলা ভাষা", "ਪੰਜਾਬੀ", "ગુજરાતી", "தமிழ் மொழி", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "සිංහල",
    "สวัสดีครับ ภาษาไทย", "กิน ข้าว", "ພາສາລາວ", "ဗမာစာ", "ភាសាខ្មែរ", "བོད་ཡིག",
    "שָׁלוֹם עוֹלָם", "בְּרֵאשִׁית בָּרָא", "مَرْحَبًا بِالْعَالَمِ", "اَلسَّلَامُ عَلَيْكُمْ",
    "Tiếng Việt có dấu", "Ti\u00ea\u0301ng Vi\u1ec7t", "a\u0308\u0323\u0301", "\u1e9b\u0323",
    "n\u0303o", "x\u0301\u08d1", "\u0301\u0301\u1ac0", "x\u0301\u0316", "\ufe0f\u0301\u08d1",
    "❤️", "☺︎", "#️⃣ 1️⃣", "🏳️‍🌈", "a\u0489b", "\u0488\u0489", "ᄀ\u302e", "한\u302e글",
    "日本\u3099語", "か\u3099", "e\u0301\ne\u0301\r\ne\u0301", "  \u0301  ", "\t\u0301",
    "\u0301" * 20, "A\u030a\u0301 \u00c5", "(\u0301)", "[\u0903]", "0\u0903", "\u0903",
    "\u093f\u0915", "ि", "word\u0301, word\u0302. Word\u0303!", "a\u0301b\u0302c 1\u03012",
    "\U00011935\U00011930", "\U00011382\U000113c9", "\U000113b8", "x\U000113b8y", "\U0001e4ec",
]


def backend35(tok):
    """transformers' Qwen3_5Tokenizer over the given tokenizer's vocabulary, merges and added
    tokens (its own normalizer, pre-tokenizer and decoder)."""
    from tokenizers import AddedToken
    from transformers import Qwen3_5Tokenizer

    tokens, _, merges = qwen3vl_vocab.vocab()
    base = {tokens[i]: i for i in range(qwen3vl_vocab.FIRST_ADDED)}
    t35 = Qwen3_5Tokenizer(vocab=base, merges=[tuple(m.split(" ", 1)) for m in merges])
    added = [AddedToken(text, special=special, normalized=False, lstrip=False, rstrip=False,
                        single_word=False) for _, text, special in qwen3vl_vocab.ADDED_TOKENS]
    t35.backend_tokenizer.add_tokens(added)
    for tid, text, _ in qwen3vl_vocab.ADDED_TOKENS:
        assert t35.backend_tokenizer.token_to_id(text) == tid, text
    return t35.backend_tokenizer


def main() -> None:
    from transformers.models.qwen3_5 import tokenization_qwen3_5 as tq
    print("Qwen3.5 regex:", tq.PRETOKENIZE_REGEX)
    qwen2 = qwen3vl_vocab.hf_tokenizer().backend_tokenizer
    q35 = backend35(qwen2)
    from tokenizers import Regex, pre_tokenizers
    splitter = pre_tokenizers.Split(Regex(tq.PRETOKENIZE_REGEX), behavior="isolated", invert=False)
    seen, lines, n_diff = set(), [], 0
    for text in MARKS + mt.all_texts():
        if text in seen:
            continue
        seen.add(text)
        ids = q35.encode(text, add_special_tokens=False).ids
        differs = ids != qwen2.encode(text, add_special_tokens=False).ids
        n_diff += differs
        e = {"text": text, "ids": ids, "qwen2_differs": differs}
        if "<|" not in text and "<tool" not in text and "<think>" not in text:
            e["pieces"] = [p for p, _ in splitter.pre_tokenize_str(q35.normalizer.normalize_str(text))]
        lines.append(json.dumps(e, ensure_ascii=False))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(lines)} lines, {n_diff} where Qwen2's pre-tokenizer differs")


if __name__ == "__main__":
    main()
