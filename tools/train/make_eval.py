#!/usr/bin/env python3
"""The held-out shapes-world set for the accuracy test (tests/eval/) and the demo media (assets/).

  make_eval.py [--images 40] [--videos 40]

Held-out scenes come from seed 2 (training uses seed 1), scene i from default_rng([2, i]); even i
are images, odd i videos. Writes tests/eval/data/<name>.{png,jpg,mp4} and tests/eval/questions.tsv
(name, kind, template, question, answer: every question the world allows for each scene).
The demo media (seed 3): assets/shapes-clip.mp4 (a three-object video) and assets/shapes-image.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import shapes_world as sw  # noqa: E402

EVAL_DIR = ROOT / "tests/eval"
HELD_OUT_SEED = 2
DEMO_SEED = 3


def held_out(n_images: int, n_videos: int) -> None:
    data = EVAL_DIR / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.iterdir():
        old.unlink()
    rows = ["name\tkind\ttemplate\tquestion\tanswer"]
    for i in range(2 * max(n_images, n_videos)):
        kind = "image" if i % 2 == 0 else "video"
        if (kind == "image" and i // 2 >= n_images) or (kind == "video" and i // 2 >= n_videos):
            continue
        scene = sw.make_scene(np.random.default_rng([HELD_OUT_SEED, i]), kind)
        path = sw.write_media(scene, data / f"{kind}-{i:03d}")
        for template, q, answer in sw.questions(scene):
            rows.append(f"{path.name}\t{kind}\t{template}\t{q}\t{answer}")
    (EVAL_DIR / "questions.tsv").write_text("\n".join(rows) + "\n")
    print(f"{len(rows) - 1} questions, {sum(f.stat().st_size for f in data.iterdir()) / 1e6:.2f} MB of media")


def demo() -> None:
    """The first seed-3 video with three moving objects on a dark background, and the first image with
    three objects."""
    assets = ROOT / "assets"
    got_video = got_image = False
    for i in range(1000):
        rng = np.random.default_rng([DEMO_SEED, i])
        kind = "video" if not got_video else "image"
        scene = sw.make_scene(rng, kind)
        if len(scene.objects) != 3:
            continue
        if kind == "video" and not got_video:
            if scene.background == "white" or sum(o.motion != "still" for o in scene.objects) < 2 \
                    or scene.width != 320 or scene.duration < 4:
                continue
            path = sw.write_media(scene, assets / "shapes-clip")
            got_video = True
        elif kind == "image":
            if scene.fmt != "png" or scene.width < 224:
                continue
            scene.fmt = "png"
            path = sw.write_media(scene, assets / "shapes-image")
            got_image = True
        else:
            continue
        print(path.relative_to(ROOT), f"{scene.width}x{scene.height}", sw.describe(scene))
        for t, q, a in sw.questions(scene):
            print(f"   {q} -> {a}")
        if got_video and got_image:
            return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--no-demo", action="store_true")
    a = ap.parse_args()
    held_out(a.images, a.videos)
    if not a.no_demo:
        demo()


if __name__ == "__main__":
    main()
