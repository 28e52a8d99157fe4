#!/usr/bin/env python3
"""Vision-only probe (issue 14): can the shipped vision tower learn shape / motion at all?

  probe_vision.py --task shape --samplings img --minutes 5
  probe_vision.py --task motion --samplings fps2,frames8 --pool group --minutes 5
  probe_vision.py --task both --samplings img,fps2,frames8 --fresh --crop 64 --minutes 3 --save out/tower.pt

transformers' Qwen3-VL vision model (model_config.VISION, or --override vision.x=...) on the cached
training scenes' pixel values (make_data.py), its merged output tokens (what the text model gets)
pooled per scene, then a linear head: no text model. One-object scenes only, so the label is
unambiguous (the shape question's answer, or the motion question's). Scenes whose index is a
multiple of 5 are held out; the log shows the training accuracy of the last logged steps and the
held-out accuracy.

Pools: `mean` (mean over all merged tokens), `attn` (one learned query attending over them, the
closest a linear probe gets to a question looking for the object), `group` (attention pool per
temporal group, then the first and last group's vectors and their difference concatenated: order
across groups is visible to the head, as it is to the text model through positions and timestamps).

`--task both` (pre-training for train.py --init-vision): one tower, two heads trained together, the
summed cross-entropies: shape from an attention pool over all merged tokens (images and videos),
motion (videos only) from the `group` pool's first / last / difference (V7's reading); `--pool` is
then unused. The log shows both heads' accuracies (motion over the videos only).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import model_config as mc  # noqa: E402

LABELS = {"shape": ["circle", "square", "triangle"], "motion": ["still", "left", "right", "up", "down"]}
NO_LABEL = -100     # --task both: an image has no motion label (cross_entropy's ignore_index)


# the processors' resize of each canvas with Reel's budgets (probe_measure.py prints it)
RESIZED = {("image", 160, 120): (320, 224), ("image", 224, 224): (256, 256), ("image", 320, 240): (320, 256),
           ("image", 320, 180): (352, 192), ("video", 160, 120): (160, 128), ("video", 224, 224): (224, 224),
           ("video", 320, 240): (320, 256), ("video", 320, 180): (320, 192)}


def patchify(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, H, W, 3] (N even) -> the processors' pixel rows [gt*gh*gw, 3*2*16*16] and grid."""
    n, h, w, _ = frames.shape
    gt, gh, gw = n // 2, h // 16, w // 16
    x = frames.transpose(0, 3, 1, 2).reshape(gt, 2, 3, gh // 2, 2, 16, gw // 2, 2, 16)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, 3 * 2 * 16 * 16)), np.array([gt, gh, gw], np.int64)


def scale_to_canvas(s, rw: int, rh: int) -> None:
    """Scales a scene's geometry to a rw x rh canvas (the processor's resize: sides by the mean
    factor, travel along its axis)."""
    sx, sy = rw / s.width, rh / s.height
    for o in s.objects:
        o.x0, o.y0, o.side = o.x0 * sx, o.y0 * sy, o.side * (sx + sy) / 2
        o.travel *= sx if o.motion in ("left", "right") else sy
    s.width, s.height = rw, rh


def frame_times(s, sampling: str) -> list[float]:
    """The clip fractions of the frames the processor keeps: 2 fps (at least 4) or 8, an even count;
    an image is one frame, twice (a temporal pair)."""
    if s.kind == "image":
        return [0.0, 0.0]
    n = s.n_frames
    k = 8 if sampling == "frames8" else min(max(int(n / s.fps * 2), 4), n)
    k -= k % 2
    return [float(i) / (n - 1) for i in np.round(np.linspace(0, n - 1, k))]


def place_on_crop(o, crop: int, rng: np.random.Generator) -> None:
    """Puts the object alone on a crop x crop canvas at its size (at most 0.6 of the crop), its travel
    shortened to fit, at a random place."""
    o.side = min(o.side, crop * 0.6)
    o.travel = min(o.travel, crop - o.side)
    o.x0, o.y0 = (float(rng.uniform(0, crop - o.side)) for _ in range(2))
    if o.motion in ("left", "right"):
        o.x0 = float(rng.uniform(0, crop - o.side - o.travel)) + (o.travel if o.motion == "left" else 0)
    if o.motion in ("up", "down"):
        o.y0 = float(rng.uniform(0, crop - o.side - o.travel)) + (o.travel if o.motion == "up" else 0)


def fresh_item(rng: np.random.Generator, task: str, sampling: str, crop: int = 0) -> dict:
    """A one-object scene rendered straight at the processor's resized size (no file, no codec):
    unlimited data for the probe; the pixels differ from the cached ones only by the resize filter
    and the compression."""
    import shapes_world as sw
    kind = "image" if sampling == "img" else "video"
    while True:
        s = sw.make_scene(rng, kind)
        if len(s.objects) == 1:
            break
    scale_to_canvas(s, *RESIZED[(kind, s.width, s.height)])
    o = s.objects[0]
    if crop:    # diagnostic: the same object on a crop x crop canvas (few tokens, no search)
        s.width = s.height = crop
        place_on_crop(o, crop, rng)
    times = frame_times(s, sampling)
    pv, grid = patchify(np.stack([sw.render_frame(s, f) for f in times]))
    if task == "both":
        motion = LABELS["motion"].index(o.motion) if kind == "video" else NO_LABEL
        return dict(pv=pv, grid=grid, sampling=sampling, label=LABELS["shape"].index(o.shape), label2=motion,
                    held=False)
    label = LABELS[task].index(o.shape if task == "shape" else o.motion)
    return dict(pv=pv, grid=grid, sampling=sampling, label=label, held=False)


def load_items(data: Path, task: str, samplings: list[str], max_files: int) -> list[dict]:
    """One-object scenes: per usable sampling, its pixel bytes, grid and label."""
    items = []
    for f in sorted(glob.glob(str(data / "*.npz")))[:max_files or None]:
        if f.endswith(".tmp.npz"):
            continue
        with np.load(f) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            qs = {q["template"]: q["answer"] for q in meta["questions"]}
            if qs["count"] != "one" or (task if task != "both" else "shape") not in qs:
                continue
            idx = int(Path(f).stem.split("-")[1])
            for s in meta["samplings"]:
                if s in samplings and task == "both":
                    motion = LABELS["motion"].index(qs["motion"]) if "motion" in qs else NO_LABEL
                    items.append(dict(pv=z[f"pv_{s}"], grid=z[f"grid_{s}"].astype(np.int64), sampling=s,
                                      label=LABELS["shape"].index(qs["shape"]), label2=motion, held=idx % 5 == 0))
                elif s in samplings:
                    items.append(dict(pv=z[f"pv_{s}"], grid=z[f"grid_{s}"].astype(np.int64), sampling=s,
                                      label=LABELS[task].index(qs[task]), held=idx % 5 == 0))
    return items


class Probe(nn.Module):
    def __init__(self, vision_cfg, n_out: int, pool: str):
        super().__init__()
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
        self.tower = Qwen3VLVisionModel._from_config(vision_cfg, attn_implementation="sdpa", dtype=torch.float32)
        d = vision_cfg.out_hidden_size
        self.pool = pool
        self.query = nn.Parameter(torch.randn(d) * d ** -0.5)
        self.key = nn.Linear(d, d)
        self.head = nn.Linear(d * (3 if pool == "group" else 1), n_out)

    def attend(self, tok: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.key(tok) @ self.query / tok.shape[-1] ** 0.5, 0)
        return w @ tok

    def forward(self, pv: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
        merged = self.tower(pv, grids).pooler_output           # [sum tokens, d], scenes in order
        sizes = (grids.prod(-1) // 4).tolist()
        feats = []
        for tok, g in zip(torch.split(merged, sizes), grids.tolist()):
            if self.pool == "mean":
                feats.append(tok.mean(0))
            elif self.pool == "attn":
                feats.append(self.attend(tok))
            else:
                groups = [self.attend(t) for t in torch.split(tok, g[1] * g[2] // 4)]
                first, last = groups[0], groups[-1]
                feats.append(torch.cat([first, last, last - first]))
        return self.head(torch.stack(feats))


class TwoTaskProbe(nn.Module):
    """--task both: one tower; a shape head on an attention pool over all merged tokens and a motion
    head on the per-group pool (first, last, last - first), each with its own query."""

    def __init__(self, vision_cfg):
        super().__init__()
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
        self.tower = Qwen3VLVisionModel._from_config(vision_cfg, attn_implementation="sdpa", dtype=torch.float32)
        d = vision_cfg.out_hidden_size
        self.query_shape = nn.Parameter(torch.randn(d) * d ** -0.5)
        self.key_shape = nn.Linear(d, d)
        self.query_motion = nn.Parameter(torch.randn(d) * d ** -0.5)
        self.key_motion = nn.Linear(d, d)
        self.head_shape = nn.Linear(d, len(LABELS["shape"]))
        self.head_motion = nn.Linear(3 * d, len(LABELS["motion"]))

    @staticmethod
    def attend(tok: torch.Tensor, key: nn.Linear, query: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(key(tok) @ query / tok.shape[-1] ** 0.5, 0)
        return w @ tok

    def forward(self, pv: torch.Tensor, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        merged = self.tower(pv, grids).pooler_output
        sizes = (grids.prod(-1) // 4).tolist()
        shape_feats, motion_feats = [], []
        for tok, g in zip(torch.split(merged, sizes), grids.tolist()):
            shape_feats.append(self.attend(tok, self.key_shape, self.query_shape))
            groups = [self.attend(t, self.key_motion, self.query_motion) for t in torch.split(tok, g[1] * g[2] // 4)]
            first, last = groups[0], groups[-1]    # an image: one group, so last - first = 0 (no label anyway)
            motion_feats.append(torch.cat([first, last, last - first]))
        return self.head_shape(torch.stack(shape_feats)), self.head_motion(torch.stack(motion_feats))


def batch_tensors(items: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pv = torch.from_numpy((np.concatenate([it["pv"] for it in items]).astype(np.float32) - 127.5) / 127.5)
    grids = torch.from_numpy(np.stack([it["grid"] for it in items]))
    y = torch.tensor([it["label"] for it in items])
    if "label2" in items[0]:
        y = torch.stack([y, torch.tensor([it["label2"] for it in items])], 1)     # [B, 2]: shape, motion
    return pv, grids, y


def two_task_loss(logits: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(logits[0], y[:, 0])
    if bool((y[:, 1] != NO_LABEL).any()):     # all ignored would be nan
        loss = loss + F.cross_entropy(logits[1], y[:, 1], ignore_index=NO_LABEL)
    return loss


def two_task_hits(logits: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor) -> tuple[list[int], list[int]]:
    """Per item: shape correct; per video: motion correct."""
    shape = (logits[0].argmax(-1) == y[:, 0]).tolist()
    vid = y[:, 1] != NO_LABEL
    motion = (logits[1].argmax(-1)[vid] == y[vid, 1]).tolist()
    return shape, motion


def evaluate(model: nn.Module, items: list[dict], bs: int) -> float | str:
    model.eval()
    ok, shape, motion = 0, [], []
    with torch.no_grad():
        for i in range(0, len(items), bs):
            pv, grids, y = batch_tensors(items[i:i + bs])
            out = model(pv, grids)
            if isinstance(out, tuple):
                s, m = two_task_hits(out, y)
                shape += s; motion += m
            else:
                ok += int((out.argmax(-1) == y).sum())
    model.train()
    if isinstance(model, TwoTaskProbe):
        return f"shape {np.mean(shape or [0]):.2f} motion {np.mean(motion or [0]):.2f} ({len(motion)} videos)"
    return ok / max(1, len(items))


def fmt(x, digits: int = 2) -> str:
    return x if isinstance(x, str) else f"{x:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE / "out/data")
    ap.add_argument("--task", choices=list(LABELS) + ["both"], default="shape",
                    help="both: shape and motion heads on one tower (pre-training for train.py --init-vision)")
    ap.add_argument("--samplings", default="img", help="comma list of img, fps2, frames8")
    ap.add_argument("--pool", choices=["mean", "attn", "group"], default="attn")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=5.0, help="CPU minutes")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps instead of --minutes "
                    "(reproducible: make train uses it)")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--max-files", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="train on freshly rendered one-object scenes "
                    "(never repeated); held-out: the cached scenes")
    ap.add_argument("--crop", type=int, default=0, help="with --fresh: images on a crop x crop canvas "
                    "(a multiple of 32; objects keep their size, clipped to the canvas)")
    ap.add_argument("--crop-until", type=int, default=0, help="with --crop: crops before this step, then "
                    "full canvases (a curriculum); held-out: the cached scenes")
    ap.add_argument("--save", type=Path, default=None, help="save the tower's weights (train.py --init-vision)")
    ap.add_argument("--init-tower", type=Path, default=None, help="start the tower from a --save file or from "
                    "a train.py checkpoint's vision tower (what did training leave in it?)")
    ap.add_argument("--freeze-tower", action="store_true", help="train the heads only (with --init-tower: "
                    "reads what the given tower already holds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--override", action="append", default=[], help="vision.x=json, e.g. vision.hidden_size=128")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    mc.apply_overrides(a.override)
    print(f"args {vars(a)}", flush=True)
    items = load_items(a.data, a.task, a.samplings.split(","), a.max_files)
    train = [it for it in items if not it["held"]]
    held = [it for it in items if it["held"] or a.fresh]
    if a.crop and not a.crop_until:
        sm = a.samplings.split(",")
        held = [fresh_item(np.random.default_rng(10**6 + i), a.task, sm[i % len(sm)], a.crop) for i in range(200)]
    two = a.task == "both"
    counts = np.bincount([it["label"] for it in train], minlength=len(LABELS["shape" if two else a.task]))
    print(f"{len(train)} training, {len(held)} held-out items; training labels {counts.tolist()} "
          f"(majority {counts.max() / max(1, counts.sum()):.2f})", flush=True)
    if two:
        model = TwoTaskProbe(mc.make_config().vision_config)
    else:
        model = Probe(mc.make_config().vision_config, len(LABELS[a.task]), a.pool)
    if a.init_tower:
        model.tower.load_state_dict(mc.tower_state(a.init_tower))
        print(f"tower from {a.init_tower}", flush=True)
    if a.freeze_tower:
        for p in model.tower.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, betas=(0.9, 0.98),
                            weight_decay=0.01)
    rng = np.random.default_rng(a.seed)
    c0, t0 = time.process_time(), time.time()
    hits, hits2, losses, step = [], [], [], 0
    while (step < a.steps) if a.steps else (time.process_time() - c0 < 60 * a.minutes):
        if a.fresh:
            samplings = a.samplings.split(",")
            batch = [fresh_item(rng, a.task, samplings[rng.integers(len(samplings))],
                                 a.crop if step < (a.crop_until or 10**9) else 0) for _ in range(a.batch)]
        else:
            batch = [train[i] for i in rng.choice(len(train), size=a.batch, replace=False)]
        pv, grids, y = batch_tensors(batch)
        logits = model(pv, grids)
        loss = two_task_loss(logits, y) if two else F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if two:
            s_hits, m_hits = two_task_hits(logits, y)
            hits += s_hits; hits2 += m_hits
        else:
            hits += (logits.argmax(-1) == y).tolist()
        losses.append(float(loss.detach()))
        if step % a.eval_every == 0:
            train_acc = f"shape {np.mean(hits):.2f} motion {np.mean(hits2 or [0]):.2f}" if two else f"{np.mean(hits):.2f}"
            print(f"step {step} cpu {time.process_time() - c0:.0f}s wall {time.time() - t0:.0f}s "
                  f"loss {np.mean(losses):.3f} train {train_acc} held {fmt(evaluate(model, held, 16))}",
                  flush=True)
            hits, hits2, losses = [], [], []
    print(f"final step {step} cpu {time.process_time() - c0:.0f}s held {fmt(evaluate(model, held, 16), 3)}", flush=True)
    if a.save:
        torch.save({"vision": model.tower.state_dict(), "args": {k: str(v) for k, v in vars(a).items()}}, a.save)


if __name__ == "__main__":
    main()
