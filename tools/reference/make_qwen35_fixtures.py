#!/usr/bin/env python3
"""Tiny random Qwen3.5 text checkpoints (Gated DeltaNet + gated full attention), their GGUF
files in llama.cpp's converter layout (arch `qwen35`) and transformers reference dumps.

Writes (relative to the repo root):
  tests/fixtures/models/q35-a-{f32,q8_0}.gguf.xz, q35-b-f16.gguf.xz
  tests/fixtures/reference/<variant>.json[.xz]   (same format as make_fixtures.py's dumps)
  tools/reference/out/<shape>-hf/                (the HF checkpoint, git-ignored)

Run from anywhere:  python tools/reference/make_qwen35_fixtures.py [--only q35-a] [--no-xz]
Deterministic: fixed seeds, CPU, float32, eager attention. The reference for each variant is
computed by transformers on the weights decoded from that GGUF (the converter's transforms
undone), so quantization is part of the model both sides run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402
import torch  # noqa: E402

import gguf_export as ge  # noqa: E402
import make_fixtures as mf  # noqa: E402  (grid helpers, cases, reference dump, xz)

VOCAB = mf.VOCAB

SHAPES = {
    # 4 layers, 3 linear : 1 full (interval 4, the real schedule); grouped value heads
    # (2 key heads, 4 value heads: the converter's V-head reorder applies); tied embeddings.
    "q35-a": dict(seed=4321, hidden_size=32, num_hidden_layers=4, full_attention_interval=4,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=64, mrope_section=[3, 3, 2],
                  intermediate_size=64, linear_num_key_heads=2, linear_num_value_heads=4,
                  linear_key_head_dim=16, linear_value_head_dim=16, linear_conv_kernel_dim=4,
                  tied=True, variants=["f32", "q8_0"]),
    # 6 layers, interval 3 (L L F L L F); as many value as key heads, value head dim != key head
    # dim; 4 query heads over 2 KV heads of 32; untied output.
    "q35-b": dict(seed=8765, hidden_size=32, num_hidden_layers=6, full_attention_interval=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, mrope_section=[2, 1, 1],
                  intermediate_size=96, linear_num_key_heads=2, linear_num_value_heads=2,
                  linear_key_head_dim=16, linear_value_head_dim=32, linear_conv_kernel_dim=4,
                  tied=False, variants=["f16"]),
}
ROPE_THETA = 1e7
PARTIAL_ROTARY = 0.25
RMS_EPS = 1e-6

LINEAR_KEYS = ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
               "linear_value_head_dim", "linear_conv_kernel_dim")


def make_config(shape: dict):
    from transformers import Qwen3_5TextConfig
    rope = dict(rope_type="default", rope_theta=ROPE_THETA, mrope_section=list(shape["mrope_section"]),
                mrope_interleaved=True, partial_rotary_factor=PARTIAL_ROTARY)
    cfg = Qwen3_5TextConfig(
        vocab_size=VOCAB, hidden_size=shape["hidden_size"], intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_hidden_layers"], num_attention_heads=shape["num_attention_heads"],
        num_key_value_heads=shape["num_key_value_heads"], head_dim=shape["head_dim"],
        hidden_act="silu", max_position_embeddings=262144, rms_norm_eps=RMS_EPS, rope_parameters=rope,
        attention_bias=False, tie_word_embeddings=shape["tied"],
        full_attention_interval=shape["full_attention_interval"],
        **{k: shape[k] for k in LINEAR_KEYS})
    want = ["full_attention" if (i + 1) % shape["full_attention_interval"] == 0 else "linear_attention"
            for i in range(shape["num_hidden_layers"])]
    assert list(cfg.layer_types) == want, cfg.layer_types
    return cfg


def init_weights(model, seed: int) -> None:
    """Coarse-grid random weights (see make_fixtures.py), with Qwen3.5's conventions:
    zero-centred RMSNorm weights (the model scales by 1 + w) k/16, the gated norm's weight
    1 + k/16, A_log = k/4 in [-2, 0.5] (decay rates exp(A_log) in [0.14, 1.6]), dt_bias k/8."""
    rng = np.random.default_rng(seed)
    new = {}
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        if name.endswith("linear_attn.norm.weight"):
            arr = mf.grid_norm_weight(rng, shape)
        elif name.endswith("norm.weight"):
            arr = mf.grid_norm_weight(rng, shape) - np.float32(1)
        elif name.endswith(".A_log"):
            arr = (rng.integers(-8, 3, shape) / 4.0).astype(np.float32)
        elif name.endswith(".dt_bias"):
            arr = (rng.integers(-8, 9, shape) / 8.0).astype(np.float32)
        elif "embed_tokens" in name or name == "lm_head.weight":
            # 5 levels: the 151936-row matrices dominate the file sizes
            arr = mf.grid_normal(rng, shape, mf.EMBED_SIGMA, steps=1, clamp=2.0)
        else:
            fan_in = int(np.prod(shape[1:]))
            arr = mf.grid_normal(rng, shape, mf._pow2_at_least(1.0 / math.sqrt(fan_in)))
        new[name] = torch.from_numpy(arr)
    missing, unexpected = model.load_state_dict(new, strict=False)
    assert not unexpected, unexpected
    assert all("lm_head" in m for m in missing), missing


def build_model(shape: dict):
    from transformers import Qwen3_5ForCausalLM
    torch.manual_seed(shape["seed"])
    model = Qwen3_5ForCausalLM._from_config(make_config(shape), attn_implementation="eager",
                                            dtype=torch.float32)
    model.eval()
    init_weights(model, shape["seed"])
    return model


def text_tensors(model) -> dict[str, np.ndarray]:
    out = {n: p.detach().float().numpy().copy() for n, p in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out


def hparams(shape: dict, sname: str) -> ge.Qwen35HParams:
    return ge.Qwen35HParams(
        n_layer=shape["num_hidden_layers"], n_embd=shape["hidden_size"], n_ff=shape["intermediate_size"],
        n_head=shape["num_attention_heads"], n_head_kv=shape["num_key_value_heads"],
        head_dim=shape["head_dim"], rms_eps=RMS_EPS, rope_theta=ROPE_THETA,
        rope_dim=int(shape["head_dim"] * PARTIAL_ROTARY), mrope_section=shape["mrope_section"],
        conv_kernel=shape["linear_conv_kernel_dim"], k_head_dim=shape["linear_key_head_dim"],
        n_k_heads=shape["linear_num_key_heads"], n_v_heads=shape["linear_num_value_heads"],
        v_head_dim=shape["linear_value_head_dim"],
        full_attention_interval=shape["full_attention_interval"], name=f"Qwen3.5 {sname}")


def decode_gguf(path: Path, hp: ge.Qwen35HParams, g2h: dict[str, str], shapes: dict[str, tuple],
                rename=lambda hf: hf) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of a Qwen3.5 text GGUF decoded, the converter's transforms undone: a state
    dict keyed by rename(HF name) (shapes: the model's, by the same keys), and each GGUF tensor's
    type name. Also used by make_qwen35_vision_fixtures.py."""
    sd, types = {}, {}
    for t in gguf.GGUFReader(str(path)).tensors:
        hf = g2h[t.name]
        name = rename(hf)
        arr = ge.decode(t.data, t.tensor_type)
        sd[name] = torch.from_numpy(ge.qwen35_gguf_to_hf(arr, hf, shapes[name], hp))
        types[t.name] = t.tensor_type.name
    return sd, types


def load_gguf_into(model, path: Path, hp: ge.Qwen35HParams, g2h: dict[str, str]) -> dict[str, str]:
    """Every tensor decoded from the GGUF, the converter's transforms undone, into the model."""
    sd_shapes = {n: tuple(p.shape) for n, p in model.state_dict().items()}
    sd, types = decode_gguf(path, hp, g2h, sd_shapes)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all(m == "lm_head.weight" for m in missing), missing
    return types


def check_round_trip(model_src, model_ref, types: dict[str, str]) -> None:
    """The reference model holds the source weights again (exactly for F32/F16 files)."""
    exact = all(t in ("F32", "F16") for t in types.values())
    a, b = model_src.state_dict(), model_ref.state_dict()
    for n in a:
        err = (a[n] - b[n]).abs().max().item()
        lim = 1e-6 if exact else 0.02 * (a[n].abs().max().item() + 1e-30)
        assert err <= lim, (n, err)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=list(SHAPES))
    ap.add_argument("--no-xz", action="store_true")
    args = ap.parse_args()

    import qwen3vl_vocab
    tok = qwen3vl_vocab.hf_tokenizer()
    for d in (mf.MODELS_DIR, mf.REF_DIR, mf.OUT_DIR):
        d.mkdir(parents=True, exist_ok=True)

    for sname, shape in SHAPES.items():
        if args.only and sname != args.only:
            continue
        t0 = time.time()
        model = build_model(shape)
        model.save_pretrained(mf.OUT_DIR / f"{sname}-hf")
        tok.save_pretrained(mf.OUT_DIR / f"{sname}-hf")
        hp = hparams(shape, sname)
        cfg_json = {k: v for k, v in shape.items() if k not in ("variants",)}
        cfg_json.update(vocab_size=VOCAB, rms_norm_eps=RMS_EPS, rope_theta=ROPE_THETA,
                        partial_rotary_factor=PARTIAL_ROTARY, mrope_interleaved=True,
                        layer_types=list(model.config.layer_types))
        for vi, variant in enumerate(shape["variants"]):
            vname = f"{sname}-{variant}"
            plain = mf.OUT_DIR / f"{vname}.gguf"
            types, g2h = ge.write_qwen35_gguf(plain, text_tensors(model), hp, variant,
                                              qwen3vl_vocab.write_vocab_kv)
            if not args.no_xz:
                mf.xz(plain, mf.MODELS_DIR / f"{vname}.gguf.xz")
            ref_model = build_model(shape)
            load_types = load_gguf_into(ref_model, plain, hp, g2h)
            assert load_types == types
            check_round_trip(model, ref_model, types)
            ref = mf.reference(ref_model, tok, vname, cfg_json, types, with_greedy=True,
                               col_seed=shape["seed"] + vi)
            p = mf.write_json(ref, mf.REF_DIR / vname)
            print(f"{vname}: gguf {plain.stat().st_size/1e6:.1f} MB, ref {p.name} "
                  f"{p.stat().st_size/1e6:.2f} MB, {time.time()-t0:.0f}s", flush=True)
            del ref_model


if __name__ == "__main__":
    main()
