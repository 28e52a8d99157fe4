#!/usr/bin/env python3
"""Trained checkpoint -> the shipped GGUF pair (llama.cpp converter layout, the repo's writer) and the
transformers checkpoint of the weights exactly as stored (what hf_answers.py runs).

  export.py --ckpt tools/train/out/ckpt.pt --out-dir assets/models

Writes assets/models/reel-shapes.gguf (text, Q8_0), assets/models/reel-shapes-mmproj.gguf (F16) and
tools/train/out/hf-stored/ (Qwen3VLForConditionalGeneration, real 151936-row vocabulary: the used rows
from training, every other row zero; text weights dequantized from the Q8_0 file, vision weights
rounded as the F16 file stores them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools/reference"))

import torch  # noqa: E402

import model_config as mc  # noqa: E402

TEXT_FTYPE, MMPROJ_FTYPE = "q8_0", "f16"


def full_model(ckpt: dict):
    """The trained weights in the real-vocabulary model."""
    from transformers import Qwen3VLForConditionalGeneration
    model = Qwen3VLForConditionalGeneration._from_config(mc.make_config(), attn_implementation="eager",
                                                         dtype=torch.float32)
    model.eval()
    sd = ckpt["state_dict"]
    used = torch.tensor(ckpt["used"])
    new = {}
    for name, p in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        if name == "model.language_model.embed_tokens.weight":
            full = torch.zeros_like(p)
            full[used] = sd[name]
            new[name] = full
        else:
            new[name] = sd[name]
    missing, unexpected = model.load_state_dict(new, strict=False)
    assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
    assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()
    return model


def vision_config_dict(model) -> dict:
    vc = model.config.vision_config
    return {k: getattr(vc, k) for k in ("depth", "hidden_size", "num_heads", "intermediate_size", "patch_size",
                                         "spatial_merge_size", "num_position_embeddings",
                                         "deepstack_visual_indexes")}


def text_hparams(model):
    import gguf_export as ge
    tc = model.config.text_config
    rope = mc.TEXT["rope_parameters"]
    return ge.TextHParams(n_layer=tc.num_hidden_layers, n_embd=tc.hidden_size, n_ff=tc.intermediate_size,
                          n_head=tc.num_attention_heads, n_head_kv=tc.num_key_value_heads,
                          head_dim=tc.head_dim, rms_eps=tc.rms_norm_eps, rope_theta=rope["rope_theta"],
                          mrope_section=rope["mrope_section"],
                          n_deepstack=len(model.config.vision_config.deepstack_visual_indexes),
                          name="Reel shapes-world Qwen3-VL tiny")


def round_vision_as_stored(model) -> None:
    """Vision weights rounded the way the F16 mmproj stores them (F32 tensors stay)."""
    import gguf_export as ge
    ds = list(model.config.vision_config.deepstack_visual_indexes)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if not name.startswith("model.visual."):
                continue
            arr = p.detach().numpy()
            gname, garr = ge.mmproj_tensor_list({name: arr}, ds)[0]
            t = ge.mmproj_tensor_type(gname, garr.ndim, garr.shape[-1], MMPROJ_FTYPE)
            if t == ge.T.F16:
                p.copy_(torch.from_numpy(arr.astype(np.float16).astype(np.float32)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=HERE / "out/ckpt.pt")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "assets/models")
    ap.add_argument("--hf-out", type=Path, default=HERE / "out/hf-stored")
    a = ap.parse_args()
    import gguf_export as ge
    import make_fixtures as mf
    import qwen3vl_vocab

    ckpt = torch.load(a.ckpt, map_location="cpu")
    mc.apply_overrides(ckpt.get("overrides", []))  # what train.py --override changed (e.g. RoPE theta)
    mc.depths_from_state_dict(ckpt["state_dict"])
    model = full_model(ckpt)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    text_path = a.out_dir / "reel-shapes.gguf"
    mmproj_path = a.out_dir / "reel-shapes-mmproj.gguf"
    hp = text_hparams(model)
    tt = mf.text_tensors(model)
    tt.pop("lm_head.weight", None)
    types = ge.write_text_gguf(text_path, tt, hp, TEXT_FTYPE, qwen3vl_vocab.write_vocab_kv)
    mtypes = ge.write_mmproj_gguf(mmproj_path, mf.vision_tensors(model), vision_config_dict(model),
                                  model.config.text_config.hidden_size, model.config.text_config.rms_norm_eps,
                                  MMPROJ_FTYPE, name="Reel shapes-world Qwen3-VL tiny mmproj")
    # the transformers model of the weights exactly as stored
    loaded = mf.load_gguf_into(model, text_path, hp.n_layer)
    assert loaded == types
    round_vision_as_stored(model)
    model.save_pretrained(a.hf_out)
    total = text_path.stat().st_size + mmproj_path.stat().st_size
    print(f"{text_path.name} {text_path.stat().st_size / 2**20:.2f} MiB ({len(types)} tensors), "
          f"{mmproj_path.name} {mmproj_path.stat().st_size / 2**20:.2f} MiB ({len(mtypes)} tensors), "
          f"total {total / 2**20:.2f} MiB; step {ckpt['step']}; HF checkpoint {a.hf_out}")
    assert total <= 30 * 2**20


if __name__ == "__main__":
    main()
