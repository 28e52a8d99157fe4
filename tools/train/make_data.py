#!/usr/bin/env python3
"""Render shapes-world scenes and cache the processor's model inputs for training.

  make_data.py --seed 1 --start 0 --count 4000 --out tools/train/out/data

Scene i comes from numpy's default_rng([seed, i]) alone, so any range can be (re)made independently
(two processes can split a range). `--zoom`: the training-only "zoomed" scenes (one object on a
64-96 px canvas), to their own folder, e.g. --zoom --seed 2 --out tools/train/out/zoom. One compressed .npz per scene: for each sampling ("img", or
"fps2" and "frames8" for videos) the pixel values as their uint8 bytes, the grid, the expanded media
tokens; plus every question's tokens and answer tokens (the answer followed by <|im_end|>).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shapes_world as sw  # noqa: E402
import qwen_inputs as qi  # noqa: E402

VIDEO_SHARE = 0.45


def cached_scenes(folders: str) -> list[str]:
    """The finished scene files (not a *.tmp.npz being written) of comma-separated folders: each
    folder's sorted, in the order given (what train.py and pretrain_tower.py read)."""
    return [str(f) for d in folders.split(",") if d for f in sorted(Path(d).glob("*.npz"))
            if not f.name.endswith(".tmp.npz")]


def scene_kind(rng: np.random.Generator) -> str:
    return "video" if rng.random() < VIDEO_SHARE else "image"


def build_one(seed: int, i: int, tmp: Path, zoom: bool = False) -> dict:
    rng = np.random.default_rng([seed, i])
    scene = sw.make_scene(rng, scene_kind(rng), zoom=zoom)
    path = sw.write_media(scene, tmp / f"s{i}")
    arrays: dict[str, np.ndarray] = {}
    if scene.kind == "image":
        pv, grid, mids = qi.media_inputs("image", sw.load_image(path))
        samplings = {"img": (pv, grid, mids)}
    else:
        frames, fps = sw.decode_video(path)
        samplings = {s: qi.media_inputs("video", frames, fps, s) for s in qi.SAMPLINGS}
    path.unlink()
    for name, (pv, grid, mids) in samplings.items():
        arrays[f"pv_{name}"] = qi.pv_to_u8(pv)
        arrays[f"grid_{name}"] = grid
        arrays[f"media_{name}"] = mids
    qs = sw.questions(scene)
    meta = {"kind": scene.kind, "samplings": list(samplings),
            "questions": [{"template": t, "question": q, "answer": a,
                           "q_ids": list(qi.tokens(q)), "a_ids": list(qi.tokens(a + qi.END))}
                          for t, q, a in qs]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return arrays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--out", type=Path, default=HERE / "out/data")
    ap.add_argument("--zoom", action="store_true", help="training only: one-object scenes on 64-96 px canvases "
                    "(shapes_world.ZOOM_CANVASES), the object a third to a half of the canvas; same processors, "
                    "budgets and questions; write them to their own folder (train.py --zoom-data)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    import torch
    torch.set_num_threads(1)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as td:
        for i in range(a.start, a.start + a.count):
            dst = a.out / f"{a.seed}-{i:06d}.npz"
            if dst.exists():
                continue
            arrays = build_one(a.seed, i, Path(td), a.zoom)
            tmp = dst.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, dst)
            if (i - a.start) % 50 == 0:
                print(f"scene {i} {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
