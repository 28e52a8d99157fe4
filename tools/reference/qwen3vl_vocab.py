"""The Qwen3-VL tokenizer, rebuilt from the shared Qwen2 vocabulary (spec sections 7 and 9.2).

The shared `ggml-vocab-qwen2.gguf` holds the Qwen2-family base vocabulary and merges, but
placeholders at ids 151646..151668. This module patches in the Qwen3-VL added tokens and
offers three views of the result:

  vocab()           -> (tokens, token_types, merges) as llama.cpp's converter writes them
  hf_tokenizer()    -> a transformers PreTrainedTokenizerFast equal to Qwen's tokenizer.json
  write_vocab_kv(w) -> adds the tokenizer.ggml.* keys to a gguf.GGUFWriter

Other reference scripts import it; keep the API stable.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

VOCAB_SIZE = 151936          # embedding rows; ids >= TOKENIZER_SIZE are padding
TOKENIZER_SIZE = 151669      # ids the HF tokenizer knows
FIRST_ADDED = 151643

TOKEN_NORMAL = 1
TOKEN_CONTROL = 3
TOKEN_USER_DEFINED = 4
TOKEN_UNUSED = 5

EOS_ID = 151645
PAD_ID = 151643
BOS_ID = 151643

# Spec section 7: (id, text, special).
ADDED_TOKENS: list[tuple[int, str, bool]] = [
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
    (151665, "<tool_response>", False),
    (151666, "</tool_response>", False),
    (151667, "<think>", False),
    (151668, "</think>", False),
]

# Spec section 7 (HF's Qwen2 pre-tokenizer regex).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def shared_vocab_path() -> Path:
    """llama.cpp's Qwen2 vocab GGUF, from the repo's tests/data (REEL_TEST_DATA overrides the
    folder). The repo stores it xz-compressed; gguf.GGUFReader maps a plain file, so it is
    unpacked once, beside its .inp/.out test vectors, under tools/reference/out/ (git-ignored)."""
    here = Path(__file__).resolve()
    data = Path(os.environ.get("REEL_TEST_DATA", here.parents[2] / "tests/data"))
    plain = data / "tokenizer/ggml-vocab-qwen2.gguf"
    if plain.exists():
        return plain
    return _unpacked_vocab(plain, here.parent / "out/test-data/tokenizer")


def _unpacked_vocab(plain: Path, cache: Path) -> Path:
    import lzma
    import shutil

    packed = plain.with_name(plain.name + ".xz")
    if not packed.exists():
        raise FileNotFoundError(f"neither {plain} nor {packed} exists")
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / plain.name
    # Each file goes through a temporary of this process's own and an atomic rename: `make train`
    # starts two data generators at once on a fresh clone, and with one shared temporary name
    # the second's rename found the file already moved away.
    def place(dst: Path, write) -> None:
        tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            write(f)
        tmp.replace(dst)

    if not out.exists() or out.stat().st_mtime < packed.stat().st_mtime:
        with lzma.open(packed) as src:
            place(out, lambda f: shutil.copyfileobj(src, f))
    for suffix in (".inp", ".out"):   # make_tokenizer_fixtures.py reads them beside the GGUF
        source = plain.with_name(plain.name + suffix)
        place(cache / (plain.name + suffix), lambda f, s=source: f.write(s.read_bytes()))
    return out


def _looks_special(text: str) -> bool:
    # llama.cpp's converter marks `<|...|>` tokens as control even when HF does not.
    return text.startswith("<|") and text.endswith("|>")


@functools.lru_cache(maxsize=1)
def _load() -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]:
    import gguf  # gguf==0.19.0

    reader = gguf.GGUFReader(str(shared_vocab_path()))
    f_tokens = reader.fields["tokenizer.ggml.tokens"]
    f_merges = reader.fields["tokenizer.ggml.merges"]
    tokens = [bytes(f_tokens.parts[i]).decode("utf-8") for i in f_tokens.data]
    merges = [bytes(f_merges.parts[i]).decode("utf-8") for i in f_merges.data]
    if len(tokens) != VOCAB_SIZE:
        raise ValueError(f"expected {VOCAB_SIZE} tokens, got {len(tokens)}")

    types = [TOKEN_NORMAL] * FIRST_ADDED + [TOKEN_UNUSED] * (VOCAB_SIZE - FIRST_ADDED)
    for tid, text, special in ADDED_TOKENS:
        tokens[tid] = text
        types[tid] = TOKEN_CONTROL if special or _looks_special(text) else TOKEN_USER_DEFINED
    for tid in range(TOKENIZER_SIZE, VOCAB_SIZE):
        tokens[tid] = f"[PAD{tid}]"
    return tuple(tokens), tuple(types), tuple(merges)


def vocab() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token_types, merges) as llama.cpp's converter writes them for Qwen3-VL."""
    tokens, types, merges = _load()
    return list(tokens), list(types), list(merges)


@functools.lru_cache(maxsize=1)
def _hf_backend():
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers
    from tokenizers import pre_tokenizers, processors
    from tokenizers.models import BPE

    tokens, _, merges = _load()
    base = {tokens[i]: i for i in range(FIRST_ADDED)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(BPE(vocab=base, merges=pairs, dropout=None, unk_token=None,
                        continuing_subword_prefix="", end_of_word_suffix="",
                        fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    tok.decoder = decoders.ByteLevel()
    # Added in id order so that each gets the id of the spec (151643 onwards).
    added = [AddedToken(text, special=special, normalized=False, lstrip=False, rstrip=False,
                        single_word=False) for _, text, special in ADDED_TOKENS]
    tok.add_tokens(added)
    for tid, text, _ in ADDED_TOKENS:
        if tok.token_to_id(text) != tid:
            raise ValueError(f"added token {text!r} got id {tok.token_to_id(text)}, want {tid}")
    return tok


def hf_tokenizer():
    """A transformers PreTrainedTokenizerFast equal to Qwen3-VL's tokenizer.json."""
    from transformers import PreTrainedTokenizerFast

    specials = [text for _, text, special in ADDED_TOKENS if special]
    return PreTrainedTokenizerFast(
        tokenizer_object=_hf_backend(),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=specials,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        model_max_length=262144,
    )


def write_vocab_kv(writer) -> None:
    """Adds the tokenizer.ggml.* keys to a gguf.GGUFWriter as llama.cpp's converter does."""
    tokens, types, merges = _load()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(list(tokens))
    writer.add_token_types(list(types))
    writer.add_token_merges(list(merges))
    writer.add_eos_token_id(EOS_ID)
    writer.add_pad_token_id(PAD_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_add_bos_token(False)
