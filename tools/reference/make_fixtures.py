#!/usr/bin/env python3
"""Build the tiny random Qwen3-VL checkpoints, their GGUF files and transformers reference dumps.

Writes (relative to the repo root):
  tests/fixtures/models/tiny-a-{f32,f16,q8_0,q4_k_m}.gguf.xz, tiny-b-{f32,q8_0}.gguf.xz,
  tests/fixtures/models/tiny-a-mmproj-f32.gguf.xz
  tests/fixtures/reference/<variant>.json[.xz]
  tools/reference/out/<shape>-hf/   (the HF checkpoint, git-ignored; for debugging)

Run from anywhere:  python tools/reference/make_fixtures.py [--only tiny-a] [--no-xz]
Deterministic: fixed seeds, CPU, float32, eager attention.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402
import torch  # noqa: E402

import gguf_export as ge  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

MODELS_DIR = ROOT / "tests/fixtures/models"
REF_DIR = ROOT / "tests/fixtures/reference"
OUT_DIR = HERE / "out"

VOCAB = 151936
N_GREEDY = 64
N_COLUMNS = 1024          # at least this many columns (the union below is often larger)
N_RANDOM_COLUMNS = 128   # seeded random ids always included

# ----------------------------------------------------------------------------------------------
# shapes

VISION = dict(depth=4, hidden_size=32, num_heads=2, intermediate_size=64, out_hidden_size=32,
              num_position_embeddings=64, deepstack_visual_indexes=[1, 2, 3], patch_size=16,
              temporal_patch_size=2, spatial_merge_size=2, in_channels=3,
              hidden_act="gelu_pytorch_tanh")

SHAPES = {
    # "2B-like": q width == hidden, tied embeddings
    "tiny-a": dict(seed=1234, hidden_size=32, num_attention_heads=2, num_key_value_heads=1,
                   head_dim=16, intermediate_size=256, num_hidden_layers=2, tied=True,
                   variants=["f32", "f16", "q8_0", "q4_k_m"], mmproj=True),
    # "4B/8B-like": q width (64) != hidden (32), separate lm_head
    "tiny-b": dict(seed=5678, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
                   head_dim=16, intermediate_size=128, num_hidden_layers=3, tied=False,
                   variants=["f32", "q8_0"], mmproj=False),
}
ROPE = dict(rope_type="default", rope_theta=5e6, mrope_section=[3, 3, 2], mrope_interleaved=True)
RMS_EPS = 1e-6


def make_config(shape: dict):
    from transformers import Qwen3VLConfig
    text = dict(vocab_size=VOCAB, hidden_size=shape["hidden_size"],
                intermediate_size=shape["intermediate_size"],
                num_hidden_layers=shape["num_hidden_layers"],
                num_attention_heads=shape["num_attention_heads"],
                num_key_value_heads=shape["num_key_value_heads"], head_dim=shape["head_dim"],
                hidden_act="silu", max_position_embeddings=262144, rms_norm_eps=RMS_EPS,
                rope_parameters=dict(ROPE), attention_bias=False, tie_word_embeddings=shape["tied"])
    vision = dict(VISION, out_hidden_size=shape["hidden_size"])
    cfg = Qwen3VLConfig(text_config=text, vision_config=vision,
                        tie_word_embeddings=shape["tied"],
                        image_token_id=151655, video_token_id=151656,
                        vision_start_token_id=151652, vision_end_token_id=151653)
    return cfg


# ----------------------------------------------------------------------------------------------
# coarse-grid random weights

def _pow2_at_least(x: float) -> float:
    return 2.0 ** math.ceil(math.log2(x))


def grid_normal(rng: np.random.Generator, shape, sigma: float, steps: int = 8,
                clamp: float = 4.0) -> np.ndarray:
    """N(0, sigma) rounded to multiples of sigma/steps, clamped to +-clamp*sigma (sigma a power
    of 2, so every value is exact in fp16 and the files compress well under xz)."""
    lim = int(clamp * steps)
    k = np.clip(np.round(rng.standard_normal(shape) * steps), -lim, lim)
    return (k * (sigma / steps)).astype(np.float32)


def grid_norm_weight(rng, shape) -> np.ndarray:
    """1 + small noise on a 1/16 grid, in [0.75, 1.25]."""
    k = np.clip(np.round(rng.standard_normal(shape) * 1.5), -4, 4)
    return (1.0 + k / 16.0).astype(np.float32)


EMBED_SIGMA = 0.25   # logits = h . e with |h| ~ sqrt(D): std ~ 1.4 -> max over vocab ~ 6-7


def init_weights(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sd = model.state_dict()
    new = {}
    for name, p in sd.items():
        shape = tuple(p.shape)
        leaf = name.rsplit(".", 1)[-1]
        is_norm = ("norm" in name) and leaf == "weight" and len(shape) == 1
        if "lm_head" in name and model.config.tie_word_embeddings:
            continue
        if is_norm:
            arr = grid_norm_weight(rng, shape)
        elif leaf == "bias":
            arr = grid_normal(rng, shape, 1.0 / 16)
        elif "embed_tokens" in name or "lm_head" in name:
            # the 151936-row matrices dominate the file sizes: coarser grid (13 levels)
            arr = grid_normal(rng, shape, EMBED_SIGMA, steps=2, clamp=3.0)
        elif "pos_embed" in name:
            arr = grid_normal(rng, shape, 1.0 / 4)
        else:
            fan_in = int(np.prod(shape[1:]))
            arr = grid_normal(rng, shape, _pow2_at_least(1.0 / math.sqrt(fan_in)))
        new[name] = torch.from_numpy(arr)
    missing, unexpected = model.load_state_dict(new, strict=False)
    assert not unexpected, unexpected
    assert all("lm_head" in m for m in missing), missing
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()


def build_model(shape: dict):
    from transformers import Qwen3VLForConditionalGeneration
    torch.manual_seed(shape["seed"])
    cfg = make_config(shape)
    model = Qwen3VLForConditionalGeneration._from_config(cfg, attn_implementation="eager",
                                                         dtype=torch.float32)
    model.eval()
    init_weights(model, shape["seed"])
    return model


def text_tensors(model) -> dict[str, np.ndarray]:
    """Text-model tensors in checkpoint order (embed, layers, norm[, lm_head]), HF names."""
    out = {}
    for name, p in model.state_dict().items():
        if name.startswith("model.language_model."):
            out[name] = p.detach().float().numpy().copy()
    if not model.config.tie_word_embeddings:
        out["lm_head.weight"] = model.lm_head.weight.detach().float().numpy().copy()
    return out


def vision_tensors(model) -> dict[str, np.ndarray]:
    return {n: p.detach().float().numpy().copy() for n, p in model.state_dict().items()
            if n.startswith("model.visual.")}


# ----------------------------------------------------------------------------------------------
# GGUF -> HF (the weights exactly as stored, dequantized)

def load_gguf_into(model, path: Path, n_layer: int) -> dict[str, str]:
    reader = gguf.GGUFReader(str(path))
    hf_names = list(text_tensors(model).keys())
    if model.config.tie_word_embeddings:
        hf_names = [n for n in hf_names if n != "lm_head.weight"]
    g2h = {ge.hf_text_to_gguf_name(n, n_layer): n for n in hf_names}
    sd = {}
    types = {}
    for t in reader.tensors:
        hf = g2h[t.name]
        arr = ge.decode(t.data, t.tensor_type)
        want = tuple(model.state_dict()[hf].shape) if hf != "lm_head.weight" else tuple(model.lm_head.weight.shape)
        arr = arr.reshape(want)
        sd[hf] = torch.from_numpy(arr.copy())
        types[t.name] = t.tensor_type.name
    assert set(sd) == set(hf_names), set(hf_names) ^ set(sd)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected
    return types


# ----------------------------------------------------------------------------------------------
# cases

LONG_TEXT = (
    "In the early morning the harbor was quiet, except for the gulls circling above the fishing "
    "boats and the distant hum of an engine warming up. Maria walked along the pier with a cup of "
    "coffee, counting the crates that had arrived overnight: twelve from Lisbon, seven from Porto, "
    "and three whose labels had been washed away by the rain. She wrote the numbers in her "
    "notebook, underlined the missing ones twice, and wondered whether the captain would remember "
    "where they had come from. By noon, the market would be full of voices, prices and the smell "
    "of salt, and nobody would care about three anonymous boxes."
)

CASES = [
    ("english", "The quick brown fox jumps over the lazy dog. It was a bright, cold day in April."),
    ("chat", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
             "<|im_start|>assistant\n"),
    ("multilingual", "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ Привет, мир! "
                     "こんにちは世界 🚀🔥 café naïve"),
    ("code", "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
             "print([fib(i) for i in range(10)])\n"),
    ("long", LONG_TEXT),
    ("single", "Hello"),
]


def f32(v) -> float:
    """A Python float whose repr is the shortest string that round-trips the float32 value."""
    return float(str(np.float32(v)))


@torch.no_grad()
def full_logits(model, ids: list[int]) -> np.ndarray:
    x = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
    return out.logits[0].float().numpy()


@torch.no_grad()
def explicit_pos_logits(model, ids: list[int]) -> np.ndarray:
    """Same, with position ids given explicitly as 0..n-1 on all three axes (text-only check)."""
    n = len(ids)
    x = torch.tensor([ids], dtype=torch.long)
    pos = torch.arange(n).view(1, 1, n).expand(3, 1, n)
    out = model(input_ids=x, attention_mask=torch.ones_like(x), position_ids=pos, use_cache=False)
    return out.logits[0].float().numpy()


@torch.no_grad()
def greedy(model, ids: list[int]) -> list[int]:
    x = torch.tensor([ids], dtype=torch.long)
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                         max_new_tokens=N_GREEDY, min_new_tokens=N_GREEDY, eos_token_id=None,
                         pad_token_id=151643, temperature=None, top_p=None, top_k=None,
                         repetition_penalty=None)
    gen = out[0, len(ids):].tolist()
    assert len(gen) == N_GREEDY, len(gen)
    return gen


def row_stats(row: np.ndarray) -> dict:
    r64 = row.astype(np.float64)
    top2 = np.partition(row, -2)[-2:]
    m = float(r64.max())
    return {"argmax": int(row.argmax()), "max": f32(row.max()),
            "lse": m + math.log(np.exp(r64 - m).sum()), "mean": float(r64.mean()),
            "top2_gap": f32(np.float32(top2[1]) - np.float32(top2[0]))}


def reference(model, tok, variant_name: str, cfg_json: dict, tensor_types: dict, with_greedy: bool,
              col_seed: int) -> dict:
    cases = []
    all_logits = []
    for cname, text in CASES:
        ids = tok.encode(text, add_special_tokens=False)
        lg = full_logits(model, ids)
        lg2 = explicit_pos_logits(model, ids)
        assert np.array_equal(lg, lg2) or np.abs(lg - lg2).max() < 1e-5, "text positions differ"
        case = {"name": cname, "text": text, "ids": ids}
        if with_greedy:
            gen = greedy(model, ids)
            # consistency: full recompute over prompt+generated agrees with the cached decode
            chk = full_logits(model, ids + gen[:-1])[len(ids) - 1:]
            agree = sum(int(chk[i].argmax() == gen[i]) for i in range(N_GREEDY))
            if agree != N_GREEDY:
                print(f"  note: {variant_name}/{cname}: greedy vs recompute argmax agree {agree}/{N_GREEDY}")
            case["greedy"] = gen
        cases.append(case)
        all_logits.append(lg)

    # columns: prompt ids, 0..127, top-8 of every position, greedy ids, seeded random fill
    cols = set(range(128))
    for case, lg in zip(cases, all_logits):
        cols.update(case["ids"])
        cols.update(case.get("greedy", []))
        cols.update(np.argsort(-lg, axis=1)[:, :8].ravel().tolist())
    rng = np.random.default_rng(col_seed)
    cols.update(rng.integers(0, VOCAB, N_RANDOM_COLUMNS).tolist())
    while len(cols) < N_COLUMNS:
        cols.add(int(rng.integers(0, VOCAB)))
    columns = sorted(int(c) for c in cols)
    cidx = np.array(columns)
    for case, lg in zip(cases, all_logits):
        case["logits"] = [[f32(v) for v in row[cidx]] for row in lg]
        case["stats"] = [row_stats(row) for row in lg]
    import transformers
    return {"model": f"{variant_name}.gguf",
            "hf": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                   "attn_implementation": "eager", "dtype": "float32"},
            "config": cfg_json, "tensor_types": tensor_types,
            "columns": columns, "cases": cases}


# ----------------------------------------------------------------------------------------------

def xz(src: Path, dst: Path) -> None:
    subprocess.run(["xz", "-9", "-T1", "-k", "-f", "-c", str(src)], check=True,
                   stdout=open(dst, "wb"))


def write_json(obj: dict, base: Path) -> Path:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    for old in (base.with_suffix(".json"), base.with_suffix(".json.xz")):
        old.unlink(missing_ok=True)
    if len(data) > 1_000_000:
        path = base.with_suffix(".json.xz")
        path.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    else:
        path = base.with_suffix(".json")
        path.write_bytes(data)
    return path


def verify_gguf(path: Path, expect: dict[str, np.ndarray], n_layer: int, types: dict[str, str]) -> None:
    """Reader round trip: names, shapes (ne reversed), types, dequantized values."""
    r = gguf.GGUFReader(str(path))
    by = {t.name: t for t in r.tensors}
    assert set(by) == set(types), set(by) ^ set(types)
    for hf, arr in expect.items():
        name = ge.hf_text_to_gguf_name(hf, n_layer)
        t = by[name]
        assert t.tensor_type.name == types[name]
        assert list(t.shape) == list(reversed(arr.shape)), (name, t.shape, arr.shape)
        y = ge.decode(t.data, t.tensor_type).reshape(arr.shape)
        err = np.abs(y - arr).max() / (np.abs(arr).max() + 1e-30)
        tol = {"F32": 0, "F16": 0, "Q8_0": 0.01, "Q5_0": 0.07, "Q6_K": 0.04, "Q4_K": 0.13}[types[name]]
        assert err <= tol, (name, types[name], err)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=list(SHAPES))
    ap.add_argument("--no-xz", action="store_true", help="leave plain .gguf files in tools/reference/out")
    ap.add_argument("--no-mmproj", action="store_true")
    args = ap.parse_args()

    import qwen3vl_vocab
    tok = qwen3vl_vocab.hf_tokenizer()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    REF_DIR.mkdir(parents=True, exist_ok=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    for sname, shape in SHAPES.items():
        if args.only and sname != args.only:
            continue
        t0 = time.time()
        model = build_model(shape)
        model.save_pretrained(OUT_DIR / f"{sname}-hf")
        tok.save_pretrained(OUT_DIR / f"{sname}-hf")
        tt = text_tensors(model)
        if shape["tied"]:
            tt.pop("lm_head.weight", None)
        tc = model.config.text_config
        hp = ge.TextHParams(n_layer=tc.num_hidden_layers, n_embd=tc.hidden_size,
                            n_ff=tc.intermediate_size, n_head=tc.num_attention_heads,
                            n_head_kv=tc.num_key_value_heads, head_dim=tc.head_dim,
                            rms_eps=tc.rms_norm_eps, rope_theta=ROPE["rope_theta"],
                            mrope_section=ROPE["mrope_section"],
                            n_deepstack=len(model.config.vision_config.deepstack_visual_indexes),
                            name=f"Qwen3-VL {sname}")
        cfg_json = {"hidden_size": tc.hidden_size, "intermediate_size": tc.intermediate_size,
                    "num_hidden_layers": tc.num_hidden_layers,
                    "num_attention_heads": tc.num_attention_heads,
                    "num_key_value_heads": tc.num_key_value_heads, "head_dim": tc.head_dim,
                    "vocab_size": tc.vocab_size, "rms_norm_eps": tc.rms_norm_eps,
                    "rope_theta": ROPE["rope_theta"], "mrope_section": ROPE["mrope_section"],
                    "mrope_interleaved": True, "tie_word_embeddings": shape["tied"],
                    "max_position_embeddings": tc.max_position_embeddings,
                    "deepstack_visual_indexes": list(model.config.vision_config.deepstack_visual_indexes),
                    "seed": shape["seed"]}
        for vi, variant in enumerate(shape["variants"]):
            vname = f"{sname}-{variant}"
            plain = OUT_DIR / f"{vname}.gguf"
            types = ge.write_text_gguf(plain, tt, hp, variant, qwen3vl_vocab.write_vocab_kv)
            verify_gguf(plain, tt, hp.n_layer, types)
            if not args.no_xz:
                xz(plain, MODELS_DIR / f"{vname}.gguf.xz")
            # reference from the weights exactly as stored
            ref_model = build_model(shape)
            load_types = load_gguf_into(ref_model, plain, hp.n_layer)
            assert load_types == types
            ref = reference(ref_model, tok, vname, cfg_json, types, with_greedy=(variant == "f32"),
                            col_seed=shape["seed"] + vi)
            p = write_json(ref, REF_DIR / vname)
            print(f"{vname}: gguf {plain.stat().st_size/1e6:.1f} MB, ref {p.name} "
                  f"{p.stat().st_size/1e6:.2f} MB, {time.time()-t0:.0f}s", flush=True)
            del ref_model
        if shape["mmproj"] and not args.no_mmproj:
            vname = f"{sname}-mmproj-f32"
            plain = OUT_DIR / f"{vname}.gguf"
            vc = model.config.vision_config
            vcfg = {k: getattr(vc, k) for k in ("depth", "hidden_size", "num_heads", "intermediate_size",
                                                 "patch_size", "spatial_merge_size",
                                                 "num_position_embeddings", "deepstack_visual_indexes")}
            ge.write_mmproj_gguf(plain, vision_tensors(model), vcfg, tc.hidden_size, tc.rms_norm_eps, "f32")
            r = gguf.GGUFReader(str(plain))
            print(f"{vname}: {len(r.tensors)} tensors")
            if not args.no_xz:
                xz(plain, MODELS_DIR / f"{vname}.gguf.xz")


if __name__ == "__main__":
    main()
