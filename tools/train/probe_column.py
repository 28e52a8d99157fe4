#!/usr/bin/env python3
"""Can the text model read where a merged token is? A linear probe of each merged token's column
(its centre as a fraction of the grid's width) from a tower's output, on cached scenes.

  probe_column.py out/tower.pt            (a pretrain_tower.py --save file, or a train.py checkpoint)

Ridge regression on the first --fit scenes, R^2 and mean absolute error on the next --test (the
images, and the videos at 2 fps), for the merged tokens, the DeepStack features and both. R^2 near 0:
the position is not in the content the text model attends to (README, "Tried 2026-12-04").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import model_config as mc  # noqa: E402
from make_data import cached_scenes  # noqa: E402
from train import load_scene, vision_batch  # noqa: E402


def features(model, path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(merged tokens, DeepStack features concatenated, column fraction) of one cached scene."""
    meta, arrays = load_scene(path)
    sampling = "img" if meta["kind"] == "image" else "fps2"
    [(merged, deep, grid)] = vision_batch(model, [(meta, arrays, sampling)])
    col = mc.merged_columns(merged.shape[0], int(grid[0, 2]) // 2)
    return merged.numpy(), torch.cat(deep, -1).numpy(), col


def ridge(x: np.ndarray, y: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Ridge read-out of y from x (with a bias) fitted on the rows in `fit`: its weights (bias last),
    and R^2 and mean absolute error on the other rows."""
    x = np.concatenate([x, np.ones((len(x), 1))], 1)
    w = np.linalg.solve(x[fit].T @ x[fit] + 1e-3 * np.eye(x.shape[1]), x[fit].T @ y[fit])
    pred, truth = x[~fit] @ w, y[~fit]
    return w, 1 - ((pred - truth) ** 2).mean() / truth.var(), float(np.abs(pred - truth).mean())


def column_variance(merged: np.ndarray, col: np.ndarray, fit: np.ndarray) -> tuple[float, float, float]:
    """On the RMS-normalised merged tokens (what the text model's first RMSNorm sees): R^2 of the
    ridge read-out, and along its unit direction the move per unit of column and the share of the
    tokens' total variance there. A readable column that holds a tiny share is hard for attention to use."""
    xn = merged / np.sqrt((merged ** 2).mean(1, keepdims=True))
    w, r2, _ = ridge(xn, col, fit)
    proj = xn @ (w[:-1] / np.linalg.norm(w[:-1]))
    return r2, float(np.polyfit(col, proj, 1)[0]), float(proj.var() / xn.var(0).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tower", type=Path)
    ap.add_argument("--data", default=str(HERE / "out/data"))
    ap.add_argument("--fit", type=int, default=90)
    ap.add_argument("--test", type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from transformers import Qwen3VLForConditionalGeneration
    cfg = mc.make_config(8, dict(image_token_id=0, video_token_id=1, vision_start_token_id=2,
                                 vision_end_token_id=3))
    model = Qwen3VLForConditionalGeneration._from_config(cfg, dtype=torch.float32)
    model.model.visual.load_state_dict(mc.tower_state(a.tower))
    model.eval()
    files = cached_scenes(a.data)[:a.fit + a.test]
    if len(files) < a.fit + a.test:
        sys.exit(f"probe_column.py: {len(files)} scenes in {a.data}, need {a.fit + a.test}")
    merged, deep, col, fit = [], [], [], []
    with torch.no_grad():
        for i, f in enumerate(files):
            m, d, c = features(model, f)
            merged.append(m); deep.append(d); col.append(c); fit.append(np.full(len(c), i < a.fit))
    merged, deep, col, fit = map(np.concatenate, (merged, deep, col, fit))
    print(f"{len(col)} merged tokens ({int(fit.sum())} to fit)")
    for name, x in [("merged tokens", merged), ("DeepStack features", deep),
                    ("both", np.concatenate([merged, deep], 1))]:
        _, r2, mae = ridge(x, col, fit)
        print(f"{name}: R^2 {r2:.3f}, mean absolute error {mae:.3f} of the width (predicting the mean: 0.25)")
    r2, slope, share = column_variance(merged, col, fit)
    print(f"RMS-normalised merged tokens: R^2 {r2:.3f}; along the read-out direction {slope:.2f} per unit of "
          f"column, {100 * share:.2f}% of the variance (token norm {np.sqrt(merged.shape[1]):.1f})")


if __name__ == "__main__":
    main()
