#!/usr/bin/env python3
"""Qwen3.5 with images and videos: a tiny random Qwen3_5ForConditionalGeneration whose text model
is exactly q35-a (make_qwen35_fixtures.py, same seed => same weights, so the committed
q35-a-f32.gguf.xz is its text file) plus a vision tower without DeepStack, its mmproj in
llama.cpp's converter layout, and transformers' references for image and video prompts.

Writes (relative to the repo root):
  tests/fixtures/models/q35-a-mmproj-f16.gguf.xz   projector qwen3vl_merger, no DeepStack
  tests/fixtures/reference/q35-a-media.json[.xz]   image and video prompts: ids, 3-axis positions,
                                                   logits at every position, 32 greedy tokens

The converter (Qwen3VLVisionModel.set_gguf_parameters, also used for Qwen3.5) writes
clip.vision.is_deepstack_layers as a block_count-long list that is all false when the config has
no deepstack_visual_indexes (Qwen3.5's vision config has none), and no v.deepstack.* tensors.

The tower is smaller than tiny-a's (fewer, narrower blocks, a smaller position grid), as the
issue describes the 0.8B's tower against Qwen3-VL's (its real shape is not checked here): depth 2,
hidden 16, one head, intermediate 32, a 4 x 4 learned position grid.

    python tools/reference/make_qwen35_vision_fixtures.py     # ~1 min on 2 cores
Needs ffmpeg/ffprobe (the committed lossless test video is decoded with the ffmpeg CLI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402
import torch  # noqa: E402

import gguf_export as ge  # noqa: E402
import make_fixtures as mf  # noqa: E402
import make_qwen35_fixtures as mq  # noqa: E402
import make_video_fixtures as mvid  # noqa: E402
import make_vision_fixtures as mv  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

TEXT_SHAPE = "q35-a"
VISION = dict(depth=2, hidden_size=16, num_heads=1, intermediate_size=32, num_position_embeddings=16,
              patch_size=16, temporal_patch_size=2, spatial_merge_size=2, in_channels=3,
              hidden_act="gelu_pytorch_tanh")
VISION_SEED = 2468
MMPROJ = "q35-a-mmproj-f16.gguf"


def make_config():
    from transformers import Qwen3_5Config
    text = mq.make_config(mq.SHAPES[TEXT_SHAPE]).to_dict()
    vision = dict(VISION, out_hidden_size=text["hidden_size"])
    cfg = Qwen3_5Config(text_config=text, vision_config=vision,
                        tie_word_embeddings=mq.SHAPES[TEXT_SHAPE]["tied"],
                        image_token_id=151655, video_token_id=151656,
                        vision_start_token_id=151652, vision_end_token_id=151653)
    assert not hasattr(cfg.vision_config, "deepstack_visual_indexes") or \
        not cfg.vision_config.deepstack_visual_indexes
    return cfg


def build_model():
    """Text weights copied from q35-a's Qwen3_5ForCausalLM; vision weights on make_fixtures'
    coarse grid (LayerNorm weights 1 + k/16, biases, position table), exact in fp16."""
    from transformers import Qwen3_5ForConditionalGeneration
    torch.manual_seed(VISION_SEED)
    model = Qwen3_5ForConditionalGeneration._from_config(make_config(), attn_implementation="eager",
                                                         dtype=torch.float32)
    model.eval()
    text = mq.build_model(mq.SHAPES[TEXT_SHAPE]).state_dict()
    rng = np.random.default_rng(VISION_SEED)
    new = {}
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        if name.startswith("model.language_model."):
            new[name] = text[name.replace("model.language_model.", "model.", 1)].clone()
            continue
        if name == "lm_head.weight":
            continue  # tied
        assert name.startswith("model.visual."), name
        leaf = name.rsplit(".", 1)[-1]
        if "norm" in name and leaf == "weight" and len(shape) == 1:
            arr = mf.grid_norm_weight(rng, shape)
        elif leaf == "bias":
            arr = mf.grid_normal(rng, shape, 1.0 / 16)
        elif "pos_embed" in name:
            arr = mf.grid_normal(rng, shape, 1.0 / 4)
        else:
            fan_in = int(np.prod(shape[1:]))
            arr = mf.grid_normal(rng, shape, mf._pow2_at_least(1.0 / np.sqrt(fan_in)))
        new[name] = torch.from_numpy(arr)
    missing, unexpected = model.load_state_dict(new, strict=False)
    assert not unexpected, unexpected
    assert all("lm_head" in m for m in missing), missing
    return model


def load_text_from_committed_gguf(model) -> None:
    """The text weights decoded from the committed q35-a-f32.gguf (the converter's transforms
    undone), as make_qwen35_fixtures.py does for q35-a's own reference: A_log goes through
    -exp and back, which is not bit-exact, so the GGUF is the truth both sides run."""
    plain = mf.OUT_DIR / f"{TEXT_SHAPE}-f32.gguf"
    if not plain.exists():
        import lzma
        mf.OUT_DIR.mkdir(parents=True, exist_ok=True)
        plain.write_bytes(lzma.decompress((mf.MODELS_DIR / f"{TEXT_SHAPE}-f32.gguf.xz").read_bytes()))
    hp = mq.hparams(mq.SHAPES[TEXT_SHAPE], TEXT_SHAPE)
    sd = model.state_dict()
    g2h = {}
    for hf_name, arr in mq.text_tensors(mq.build_model(mq.SHAPES[TEXT_SHAPE])).items():
        g2h[ge.qwen35_hf_to_gguf(hf_name, arr, hp)[0]] = hf_name
    shapes = {n: tuple(p.shape) for n, p in sd.items()}
    new, _ = mq.decode_gguf(plain, hp, g2h, shapes,
                            rename=lambda hf: hf.replace("model.", "model.language_model.", 1))
    for name, back in new.items():
        assert np.allclose(back.numpy(), sd[name].numpy(), rtol=1e-6, atol=0), name
    missing, unexpected = model.load_state_dict(new, strict=False)
    assert not unexpected and not [m for m in missing if "language_model" in m], (missing, unexpected)
    print(f"  text weights from the committed {TEXT_SHAPE}-f32.gguf ({len(new)} tensors)")


def write_mmproj(model) -> None:
    vcfg = dict(VISION, deepstack_visual_indexes=[])
    vis = mf.vision_tensors(model)
    plain = mf.OUT_DIR / MMPROJ
    text_cfg = model.config.text_config
    ge.write_mmproj_gguf(plain, vis, vcfg, text_cfg.hidden_size, text_cfg.rms_norm_eps, "f16",
                         name="Qwen3.5 tiny mmproj")
    r = gguf.GGUFReader(str(plain))
    exp = dict(ge.mmproj_tensor_list(vis, []))
    assert len(r.tensors) == len(exp)
    for t in r.tensors:
        assert not t.name.startswith("v.deepstack."), t.name
        got = ge.decode(t.data, t.tensor_type).reshape(exp[t.name].shape)
        assert np.array_equal(got, exp[t.name]), t.name  # the grid weights are exact in fp16
    mf.xz(plain, mf.MODELS_DIR / f"{MMPROJ}.xz")
    print(f"  {MMPROJ}: {len(r.tensors)} tensors, decodes == f32 weights")


def main() -> None:
    import transformers
    from transformers.image_utils import load_image
    model = build_model()
    load_text_from_committed_gguf(model)
    write_mmproj(model)

    # image prompts (make_vision_fixtures' cases) and video prompts (make_video_fixtures')
    names = sorted({n for _, imgs, _ in mv.PROMPTS for n in imgs})
    sources = {n: src for n, src, _ in mv.IMAGES}
    pils = {n: load_image(str(mv.resolve(sources[n]))) for n in names}
    icols, icases = mv.prompt_dumps(model, pils)
    frames = mvid.ffmpeg_decode(mvid.VID_DIR / mvid.VIDEO_NAME)
    vcols, vcases = mvid.prompt_dumps(model, frames)
    # each script picks its own logit columns; both sets are kept
    hf = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
          "attn_implementation": "eager", "dtype": "float32"}
    for c in icases:
        c["kind"] = "image"
    for c in vcases:
        c["kind"] = "video"
    p = mf.write_json({"model": f"{TEXT_SHAPE}-f32.gguf", "mmproj": MMPROJ, "hf": hf,
                       "vision_config": VISION, "image_columns": icols, "video_columns": vcols,
                       "cases": icases + vcases}, mf.REF_DIR / f"{TEXT_SHAPE}-media")
    print(f"  {p.name} {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
