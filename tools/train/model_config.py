"""The tiny Qwen3-VL trained on the shapes world: the architecture of Qwen3-VL (vision encoder with
DeepStack, merger, text decoder with interleaved MRoPE, tied embeddings), scaled down.

Training uses the same model class with a small remapped vocabulary (only the ids the world's prompts
and answers use); export.py scatters those rows into the real 151936-row matrix, the others zero.
With zero rows every other token's logit is exactly 0, so a softmax over the used ids plus one
extra logit log(n_zero_rows) is exactly the full-vocabulary softmax (train.py's loss).
"""

from __future__ import annotations

VOCAB = 151936
IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END = 151655, 151656, 151652, 151653

TEXT = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=32, hidden_act="silu", max_position_embeddings=262144,
            rms_norm_eps=1e-6, attention_bias=False,
            # Qwen3-VL's [24, 20, 20] for head_dim 128, scaled to head_dim 32 (sum = head_dim / 2)
            rope_parameters=dict(rope_type="default", rope_theta=5e6, mrope_section=[6, 5, 5],
                                 mrope_interleaved=True))
VISION = dict(depth=4, hidden_size=64, num_heads=2, intermediate_size=256, out_hidden_size=128,
              num_position_embeddings=256, deepstack_visual_indexes=[1, 2, 3], patch_size=16,
              temporal_patch_size=2, spatial_merge_size=2, in_channels=3, hidden_act="gelu_pytorch_tanh")


def apply_overrides(overrides: list[str]) -> None:
    """Pilot runs: "vision.hidden_size=96", "text.num_hidden_layers=4", values as JSON (a dict value,
    e.g. text.rope_parameters={...}, replaces the whole entry)."""
    import json
    for o in overrides:
        key, sep, val = o.partition("=")
        part, dot, name = key.partition(".")
        target = {"vision": VISION, "text": TEXT}.get(part)
        if not sep or not dot or target is None or name not in target:
            raise SystemExit(f"--override {o!r}: expected vision.NAME=JSON or text.NAME=JSON with NAME one of "
                             f"model_config's keys")
        try:
            target[name] = json.loads(val)
        except json.JSONDecodeError as e:
            raise SystemExit(f"--override {o!r}: the value is not JSON ({e})")


def depths_from_state_dict(state_dict: dict) -> None:
    """Set TEXT's and VISION's layer counts to a checkpoint's (one trained with train.py --override)."""
    def count(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in state_dict if k.startswith(prefix)})
    TEXT["num_hidden_layers"] = count("model.language_model.layers.")
    VISION["depth"] = count("model.visual.blocks.")


def merged_columns(n_tokens: int, merged_width: int):
    """Each merged token's column centre as a fraction of the grid's width, for tokens in the tower's
    output order (temporal group, row, column; merged_width columns a row): the label of
    pretrain_tower.py's "col" head, train.py's --col-weight loss and probe_column.py."""
    import numpy as np
    return ((np.arange(n_tokens) % merged_width + 0.5) / merged_width).astype(np.float32)


def tower_state(path) -> dict:
    """The vision tower's weights (keys as in model.model.visual) from a pretrain_tower.py or
    probe_vision.py save ("vision") or from a train.py checkpoint (its "model.visual." entries)."""
    import torch
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if "vision" in saved:
        return saved["vision"]
    prefix = "model.visual."
    return {k[len(prefix):]: v for k, v in saved["state_dict"].items() if k.startswith(prefix)}


def make_config(vocab_size: int = VOCAB, ids: dict | None = None):
    """ids: the four vision token ids (remapped for training); the real ones by default."""
    from transformers import Qwen3VLConfig
    ids = ids or dict(image_token_id=IMAGE_PAD, video_token_id=VIDEO_PAD,
                      vision_start_token_id=VISION_START, vision_end_token_id=VISION_END)
    text = dict(TEXT, vocab_size=vocab_size, tie_word_embeddings=True)
    return Qwen3VLConfig(text_config=text, vision_config=dict(VISION), tie_word_embeddings=True, **ids)
