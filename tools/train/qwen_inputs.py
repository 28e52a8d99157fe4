"""Model inputs for shapes-world media, made by the reference processors exactly as Reel builds them.

Reel's one-shot prompt (src/pipeline/chat_template.cpp, src/cli/chat.cpp) with the media first:
  <|im_start|>user\\n<|vision_start|><|image_pad|><|vision_end|>QUESTION<|im_end|>\\n<|im_start|>assistant\\n
(<|video_pad|> for a video; the processor expands it into timestamped temporal groups).
Image budget: 64..16384 tokens of 32x32 pixels (Reel's ImageOptions); video budget: the Qwen3-VL
video_preprocessor_config (4096..25165824 pixels, Reel's kQwen3VLVideoBudget), sampled at 2 fps
(transformers' default, what Reel does without flags) or as 8 evenly spaced frames (`--frames 8`).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tools/reference"))

HEAD = "<|im_start|>user\n"
TAIL = "<|im_end|>\n<|im_start|>assistant\n"
MEDIA_MARK = {"image": "<|vision_start|><|image_pad|><|vision_end|>",
              "video": "<|vision_start|><|video_pad|><|vision_end|>"}
END = "<|im_end|>"
SAMPLINGS = {"fps2": {}, "frames8": {"num_frames": 8, "fps": None}}


def prompt_text(kind: str, question: str) -> str:
    return HEAD + MEDIA_MARK[kind] + question + TAIL


@functools.lru_cache(maxsize=1)
def processor():
    import make_video_fixtures  # tools/reference: the reference processors (image + video)
    return make_video_fixtures.processor()


@functools.lru_cache(maxsize=4096)
def tokens(text: str) -> tuple[int, ...]:
    return tuple(processor().tokenizer(text, add_special_tokens=False)["input_ids"])


def media_inputs(kind: str, media, fps: float | None = None, sampling: str = "fps2"):
    """Runs the processor on Reel's prompt; returns (pixel_values float32 [P, 1536], grid_thw [3],
    media ids: the expanded tokens between HEAD and the question).
    media: an RGB uint8 [H, W, 3] image or [N, H, W, 3] frames (fps: the stream's frame rate)."""
    import PIL.Image
    proc = processor()
    probe_q = "?"
    text = prompt_text(kind, probe_q)
    if kind == "image":
        out = proc(text=[text], images=[PIL.Image.fromarray(media)], return_tensors="pt")
        pv, grid = out["pixel_values"], out["image_grid_thw"][0]
    else:
        out = proc(text=[text], videos=[media],
                   video_metadata=[{"fps": fps, "total_num_frames": int(media.shape[0])}],
                   return_tensors="pt", **SAMPLINGS[sampling])
        pv, grid = out["pixel_values_videos"], out["video_grid_thw"][0]
    ids = out["input_ids"][0].tolist()
    head, q, tail = tokens(HEAD), tokens(probe_q), tokens(TAIL)
    assert tuple(ids[:len(head)]) == head, ids[:8]
    assert tuple(ids[len(ids) - len(q) - len(tail):]) == q + tail
    media_ids = ids[len(head):len(ids) - len(q) - len(tail)]
    return pv.numpy(), grid.numpy().astype(np.int64), np.asarray(media_ids, np.int32)


def pv_to_u8(pv: np.ndarray) -> np.ndarray:
    """pixel values (x/255 - 0.5) / 0.5 of uint8 pixels back to those bytes (exact)."""
    u8 = np.round(pv * 127.5 + 127.5)
    assert np.abs(u8 - (pv * 127.5 + 127.5)).max() < 1e-3
    return u8.astype(np.uint8)


def u8_to_pv(u8: np.ndarray) -> np.ndarray:
    return (u8.astype(np.float32) - 127.5) / 127.5


def world_strings() -> list[str]:
    """Every text piece a shapes-world prompt or answer can contain (for the used-token set)."""
    import shapes_world as sw
    out = [HEAD, TAIL, END, MEDIA_MARK["image"], MEDIA_MARK["video"], "<|endoftext|>"]
    out += [f"<{t / 10:.1f} seconds>" for t in range(0, 1000)]
    words = list(sw.SHAPES) + list(sw.COLORS) + list(sw.MOTIONS) + list(sw.COUNT_WORDS.values())
    out += [w + END for w in words]
    for shape in sw.SHAPES:
        out.append(f"What color is the {shape}?")
        for color in sw.COLORS:
            out.append(f"Which way does the {color} {shape} move?")
            for m in sw.MOTION_PHRASE.values():
                out += [f"A {color} {shape} {m} and a {color} {shape}.", f"A {color} {shape}, a {color} {shape}."]
            out += [f"A {color} {shape} and a {color} {shape}."]
    out += [f"What shape is the {c} object?" for c in sw.COLORS]
    out += ["How many objects are there?", "Describe the image.", "Describe the video."]
    return out


def world_vocab() -> list[int]:
    ids = set()
    for s in world_strings():
        ids.update(tokens(s))
    return sorted(ids)
