#!/usr/bin/env python3
"""What the model's input gives of each object (issue 14): pixels per object side after the
processors' resize, per 16x16 patch and per 32x32 merged token; for videos the displacement between
the two frames of one temporal pair (what one Conv3d patch sees) and between successive temporal
groups, at the default 2 fps and with --frames 8.

  probe_measure.py [--scenes 3000]

Scenes come from shapes_world.make_scene (the training generator's rules); the resized size of
each canvas comes from the reference processors with Reel's budgets (qwen_inputs.media_inputs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import qwen_inputs as qi  # noqa: E402
import shapes_world as sw  # noqa: E402


def resized(kind: str, w: int, h: int) -> tuple[int, int]:
    """(width, height) the processor gives a canvas (grid * 16)."""
    if kind == "image":
        _, grid, _ = qi.media_inputs("image", np.zeros((h, w, 3), np.uint8))
    else:
        _, grid, _ = qi.media_inputs("video", np.zeros((8, h, w, 3), np.uint8), fps=8.0)
    return int(grid[2]) * 16, int(grid[1]) * 16


def pct(v) -> str:
    q = np.percentile(v, [0, 10, 50, 90, 100])
    return " / ".join(f"{x:.1f}" for x in q)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=3000)
    a = ap.parse_args()
    size = {(k, w, h): resized(k, w, h) for k in ("image", "video") for w, h in sw.CANVASES}
    for (k, w, h), (rw, rh) in size.items():
        print(f"{k:5s} canvas {w}x{h} -> {rw}x{rh} (scale {rw / w:.2f} x {rh / h:.2f})")
    side = {"image": [], "video": []}
    moves = {"fps2_pair": [], "fps2_group": [], "frames8_pair": [], "frames8_group": [], "sec": []}
    for i in range(a.scenes):
        rng = np.random.default_rng([99, i])
        kind = "video" if i % 2 else "image"
        s = sw.make_scene(rng, kind)
        rw, rh = size[(kind, s.width, s.height)]
        sx, sy = rw / s.width, rh / s.height
        for o in s.objects:
            side[kind].append(o.side * min(sx, sy))
            if kind == "image" or o.motion == "still":
                continue
            scale = sx if o.motion in ("left", "right") else sy
            speed = o.travel / s.duration * scale                         # resized pixels per second
            n = s.n_frames
            # frame times of the sampled frames: linspace over frame indices 0..n-1 at the stream's fps
            n2 = min(max(int(n / s.fps * 2), 4), n)
            n2 -= n2 % 2                                                  # pairs (the processor pads odd counts)
            dt2 = (n - 1) / (n2 - 1) / s.fps
            dt8 = (n - 1) / 7 / s.fps
            moves["fps2_pair"].append(speed * dt2); moves["fps2_group"].append(speed * 2 * dt2)
            moves["frames8_pair"].append(speed * dt8); moves["frames8_group"].append(speed * 2 * dt8)
            moves["sec"].append(speed)
    print("percentiles 0 / 10 / 50 / 90 / 100")
    for k, v in side.items():
        v = np.asarray(v)
        print(f"{k} object side, resized px: {pct(v)}; in 16-px patches: {pct(v / 16)}; "
              f"share under 2 patches {np.mean(v < 32):.2f}")
    for k, v in moves.items():
        print(f"moving object, resized px {'per second' if k == 'sec' else 'per ' + k}: {pct(v)}")


if __name__ == "__main__":
    main()
