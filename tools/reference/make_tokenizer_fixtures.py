"""Writes the tokenizer fixtures (run with the reference venv, from anywhere):

  tests/fixtures/tokenizer/qwen3vl-vocab.gguf.xz  tensor-less GGUF with the Qwen3-VL
                                                  tokenizer.ggml.* keys, xz-compressed
  tests/fixtures/tokenizer/corpus.jsonl           one JSON object per line:
      text      the input (str), or
      hex       raw input bytes (possibly invalid UTF-8); HF sees them decoded with
                errors="replace", which is the C++ tokenizer's policy
      ids       HF ids, special tokens parsed
      ids_plain HF ids with special tokens split (split_special_tokens); only where the
                text holds no token that llama.cpp types differently (fim/repo/file_sep)
      decoded   HF decode(ids) (skip_special_tokens=False)
"""

from __future__ import annotations

import json
import lzma
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qwen3vl_vocab  # noqa: E402

OUT_DIR = Path(__file__).resolve().parents[2] / "tests/fixtures/tokenizer"

# Control in GGUF (they look like <|...|>) but non-special in HF: parse_special=false differs.
TYPED_DIFFERENTLY = ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                     "<|repo_name|>", "<|file_sep|>"]

MULTILINGUAL = [
    "我想在apple工作", "你好，世界！", "日本語のテキストです。カタカナとひらがな。",
    "한국어 텍스트입니다", "Привет, мир! Как дела?", "Съешь же ещё этих мягких французских булок",
    "مرحبا بالعالم", "السلام عليكم ورحمة الله", "नमस्ते दुनिया", "हिन्दी में लिखा गया पाठ",
    "สวัสดีครับ ภาษาไทย", "Γειά σου Κόσμε", "שלום עולם", "Xin chào thế giới", "Türkçe ğüşıöç",
    "Zażółć gęślą jaźń", "Ελληνικά και English μαζί", "ĀāĒēĪīŌōŪū", "ﬁ ﬂ ﬀ ligatures",
    "e\u0301", "cafe\u0301", "A\u030a", "\u212b", "\u1e9b\u0323", "n\u0303o", "\uac00\u11a8",
    "\u1100\u1161\u11a8", "ㄱㅏ", "e\u0301\u0301\u0301", "\u0915\u093c", "z\u0335\u0321a\u0336lgo",
    "Ǆ ǅ ǆ", "ß ẞ", "İstanbul ıi", "ſ 'ſ 'ſt", "Ω Ω", "½ ¼ ² ³ ⁴ ₅", "١٢٣ ٤٥٦", "一二三 百千万",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟙𝟚𝟛", "Ⅻ ⅻ", "᛫ᚠᚢᚦ", "ꙮ", "🀄 mahjong", "\u00a0nbsp\u00a0", "a\u3000b",
    "a\u2028b\u2029c", "a\u0085b", "a\u200bb", "a\u200db", "a\u2060b", "\ufeffbom", "a\u180eb",
    "a\u1680b", "x\u202fy\u205fz", "\u0001\u0002\u001f\u007f", "a\u001cb\u001dc\u001ed\u001ff",
    "a\x0bb\x0cc", "tab\tand\x0bvt",
    # HF's \p{L}/\p{N} follow Unicode 16 (Oniguruma); its NFC follows Unicode 9 (marks added
    # later have no combining class there, so they are not reordered).
    "\U00013460's", "\U0002EBF0'S \U0002EE5D", "\U00010D40\U00010D41", "\u1c89x",
    "x\u0301\u08d1", "\u0301\u0301\u1ac0", "\U00011935\U00011930", "\U00011382\U000113c9",
    "x\u0301\u0316", "\ufe0f\u0301\u08d1", "a\u0308\u0323\u0301",
]

EMOJI = [
    "😁", "😁😁😁", "hello 😁 world", "👍🏽", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "🇺🇸🇯🇵🇩🇪", "🇺🇸 flag",
    "❤️", "☺︎", "🧑🏿‍💻 coding", "#️⃣ 1️⃣", "🫠🫡🫶", "a😁b", "😁?", "(😁)", "😁\n😁",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👩‍❤️‍💋‍👨",
]

CODE = [
    "def foo(x):\n    return x * 2\n",
    "int main(int argc, char** argv) {\n\treturn 0;\n}\n",
    "for (size_t i = 0; i < n; ++i) { a[i] += b[i]; }",
    "#include <vector>\n#include \"foo.h\"\n",
    "fn main() -> Result<(), Box<dyn Error>> { println!(\"{}\", 1_000); Ok(()) }",
    "const f = async (a, b) => { await g(a ?? b); };",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "<div class=\"x\"><span>hi</span></div>",
    "{\"key\": [1, 2.5, -3e10, true, null], \"s\": \"\\u00e9\"}",
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "if [ -f \"$HOME/.bashrc\" ]; then . ~/.bashrc; fi",
    "    def method(self):\n        pass\n\n\n",
    "a  =  b   +   c",
    "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n",
    "std::unique_ptr<Foo> p = std::make_unique<Foo>(1, 2);",
    "printf(\"%d %s\\n\", x, y);",
    "match x { Some(v) => v, None => 0 }",
    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
    "<?php echo $x; ?>",
    "let re = /^[a-z]+\\d*$/gi;",
    "x\t=\t1\t\t# tabs",
    "    \t  \n\t\t\n",
]

WHITESPACE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\t\n", "\r\n", "\r\n\r\n", "\r", "a\rb",
    "a\r", "\ra", " \r\n ", "a \n b", "a  \n  b", "a\n \nb", "trailing ", "trailing   ",
    "trailing\t", "trailing\n", "trailing \n", " leading", "   leading", "\tleading",
    "\n\nleading", "a  b", "a   b", "a    b", "a\t\tb", "a \t b", "a\t b", "a \tb", "   Hello",
    "    Hello\n    Hello", "\n =", " \n", "  \n", " \n ", "\n \n", "x \r\n", "x\r\n\r\ny",
    "a\n\n\n\nb", "     \n     ", "\u3000\u3000a", " \u3000a", "a \u00a0b", "!\n", "!\r\n", "! \n",
    "!!\n\n", "?\r\r\n", " !\n", "\n!", " ", "\t\t", " \t", "\t ",
]

NUMBERS = [
    "333", "0", "1234567890", "3.14159", "-42", "1,000,000", "1e-10", "0x1F", "v1.2.3",
    "2024-01-31", "12:30:45", "$100.00", "50%", "1/2", "10⁵", "٣", "①②③", "a1b2c3",
    "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "x1000000000y", " 12", "  12",
]

CONTRACTIONS = [
    "don't", "DON'T", "it's", "IT'S", "It'S", "we're", "WE'RE", "We'Re", "I've", "I'VE",
    "I'm", "I'M", "we'll", "WE'LL", "We'Ll", "she'd", "SHE'D", "'s", "'S", "'ll", "'LL", "'lL",
    "'re'", "'t", "'x", "''s", "' era", "'sfoo", "'Sfoo", "rock'n'roll", "'", "''", "'1", "' s",
    "y'all", "o'clock", "‘s ’s", "'ſ", "'ſt",
]

PROSE = [
    "Hello world", " Hello world", "Hello World", " Hello World!", "Hello, world!",
    " discards", "!!!!!!", "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Mr. O'Neil's e-mail: o.neil@example.com; site: https://example.com/a?b=c&d=e#f",
    "C'est l'été à Paris — naïve café résumé.", "UPPER lower MiXeD", "snake_case camelCase",
    "ALLCAPSWORD", "...", "…", "---", "***bold***", "_italic_", "(parenthetical)", "[x]",
    "\"quoted\"", "«guillemets»", "a,b;c:d", "?!?!", "x--y", "a/b\\c", "~`@#$%^&*",
]

SPECIAL = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>",
    "<think>", "</think>", "<think>\nreasoning\n</think>\n\nanswer",
    "<|vision_start|><|image_pad|><|vision_end|>",
    "<|vision_start|>" + "<|image_pad|>" * 16 + "<|vision_end|>",
    "<|vision_start|><|video_pad|><|video_pad|><|vision_end|>",
    "<|im_start", "<|im_start|", "im_start|>", "<|im_end|x", "<|IM_START|>", "< |im_start|>",
    "<|im_start|><|im_start|>", "<|im_start|>|>", "<<|im_start|>>", "<|<|im_end|>|>",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
    "<tool_response>\nok\n</tool_response>", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<|repo_name|>reel<|file_sep|>main.cpp", "<|fim_pad|>", "<|object_ref_start|>cat<|object_ref_end|>",
    "<|box_start|>(10,20),(30,40)<|box_end|>", "<|quad_start|><|quad_end|>", "<|vision_pad|>",
    "text<|im_end|>more", " <|im_end|> ", "\n<|im_start|>\n", "<|endoftext|><|endoftext|>",
    "<thinking>", "<think >", "</think", "<tool_call", "<|image_pad|>" * 50, "[PAD151669]",
    "<|im_start|>assistant\n<think>\n\n</think>\n\n", "a<think>b</think>c",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>Hello", "x<|vision_start|>", "e\u0301<|im_end|>e\u0301",
]

CHAT = [
    # Spec section 8, rendered examples.
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Describe this video.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"
    "<|vision_end|>What is this?<|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\n"
    "What color?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions"
    " to assist with the user query.\n\nYou are provided with function signatures within <tools></tools>"
    " XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
    "\"parameters\": {\"type\": \"object\"}}}\n</tools>\n\nFor each function call, return a json object"
    " with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
    "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
    "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
    "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>Video 1: "
    "<|vision_start|><|video_pad|><|vision_end|>Compare.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\n<0.5 seconds><|vision_start|><|video_pad|><|video_pad|><|vision_end|>"
    "<1.5 seconds><|vision_start|><|video_pad|><|vision_end|>What happens?<|im_end|>\n",
]

# Raw byte inputs (hex), many of them invalid UTF-8.
RAW = [
    b"\xff", b"abc\xffdef", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xf0\x9f\x98",
    b"\xf0\x9f\x98 ok", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80",
    b"\x80\x80\x80", b"\xfe\xfe", b"a\x00b", b"\x00", b"\xf8\x88\x80\x80\x80",
    b"<|im_start|>\xff<|im_end|>", b"\xe4\xbd\xa0\xe5\xa5", b"\xc3\xa9\xcc\x81",
]


def generated() -> list[str]:
    """Systematic combinations: every class of character next to every other."""
    atoms = ["a", "A", "1", " ", "  ", "\t", "\n", "\r\n", "!", "'s", "é", "中", "😁", "\u3000",
             "<|im_end|>", "<think>"]
    out = []
    for x in atoms:
        for y in atoms:
            out.append(x + y + x)
    return out


def random_strings(seed: int, count: int) -> list[str]:
    """Short random mixes of the classes the pre-tokenizer and normalizer care about."""
    import random
    import unicodedata

    rng = random.Random(seed)
    pool = list("aZ09 '\t\n\r!?.,-_<>|/") + [
        "'s", "'S", "'ll", "'Re", "'ve", "'M", "'D", "'\u017f", "\u3000", "\u00a0", "\u2028",
        "\u0085", "\u200b", "\x0b", "\x1c", "\u0301", "\u0316", "\u08d1", "e\u0301", "\u00e9",
        "中", "😁", "👨\u200d👩", "🇺🇸", "\ufe0f", "١", "½", "Ⅻ", "ǅ", "ʰ", "々", "ๆ", "\u0e31",
        "\u093f", "İ", "K", "\U00013460", "\U00010D40", "<|im_start|>", "<|im_end|>", "<think>",
        "<|image_pad|>", "<|im_", "|>", "  ", "\n\n", " \n", "\r\n", "\x00"]

    def any_char() -> str:
        while True:
            c = rng.choice([rng.randrange(0x20, 0x3000), rng.randrange(0x3000, 0x30000)])
            if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cs":
                return chr(c)

    return ["".join(rng.choice(pool) if rng.random() < 0.8 else any_char()
                    for _ in range(rng.randrange(1, 20))) for _ in range(count)]


def long_inputs() -> list[str]:
    return [
        "a" * 1000,
        "ab" * 700,
        " " * 300,
        "\n" * 100,
        "!" * 500,
        "1" * 200,
        "中文" * 300,
        ("The quick brown fox jumps over the lazy dog. " * 40).strip(),
        "😁" * 100,
        "x " * 300,
    ]


def all_texts() -> list[str]:
    groups = [MULTILINGUAL, EMOJI, CODE, WHITESPACE, NUMBERS, CONTRACTIONS, PROSE, SPECIAL, CHAT,
              generated(), long_inputs(), shared_inputs(), random_strings(1234, 150)]
    seen, texts = set(), []
    for g in groups:
        for t in g:
            if t not in seen:
                seen.add(t)
                texts.append(t)
    return texts


def shared_inputs() -> list[str]:
    inp = qwen3vl_vocab.shared_vocab_path().with_suffix(".gguf.inp").read_text(encoding="utf-8")
    return inp.split("\n__ggml_vocab_test__\n")[:-1]


def entry(backend, text: str, raw: bytes | None = None) -> dict:
    ids = backend.encode(text, add_special_tokens=False).ids
    e = {"hex": raw.hex()} if raw is not None else {"text": text}
    e["ids"] = ids
    if not any(t in text for t in TYPED_DIFFERENTLY):
        backend.encode_special_tokens = True
        e["ids_plain"] = backend.encode(text, add_special_tokens=False).ids
        backend.encode_special_tokens = False
    e["decoded"] = backend.decode(ids, skip_special_tokens=False)
    return e


def write_corpus(path: Path) -> int:
    tok = qwen3vl_vocab.hf_tokenizer()
    backend = tok.backend_tokenizer
    lines = []
    for text in all_texts():
        e = entry(backend, text)
        # The transformers wrapper must agree with the raw backend.
        assert tok.encode(text, add_special_tokens=False) == e["ids"], text
        lines.append(json.dumps(e, ensure_ascii=False))
    for raw in RAW:
        lines.append(json.dumps(entry(backend, raw.decode("utf-8", "replace"), raw),
                                ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def write_vocab_gguf(path: Path) -> None:
    import gguf

    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "vocab.gguf"
        writer = gguf.GGUFWriter(str(plain), arch="qwen3vl")
        writer.add_name("Qwen3-VL tokenizer")
        qwen3vl_vocab.write_vocab_kv(writer)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        data = plain.read_bytes()
    path.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_vocab_gguf(OUT_DIR / "qwen3vl-vocab.gguf.xz")
    n = write_corpus(OUT_DIR / "corpus.jsonl")
    print(f"wrote {OUT_DIR}: vocab GGUF and {n} corpus lines")


if __name__ == "__main__":
    main()
