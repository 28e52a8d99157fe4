#!/usr/bin/env python3
"""Dense pre-training of the vision tower (issue 14): every merged token gets its own labels.

  pretrain_tower.py --steps 2000 --object-cover 0.021 --cached out/data,out/zoom \
      --weight shape=3 --weight pooled_shape=3 --weight rank=0 --weight count=0 --save out/tower.pt
  (make train's step 3; then train.py --init-vision out/tower.pt --freeze-mergers)

Why: the probes (README, "Why shape and motion stay at chance") showed that the tower can learn shape
and motion, but that a loss read through a pool (or through the text model's question) reaches the
2-6 object tokens among 64-80 with a small share of its gradient: credit assignment, not capacity.
Here there is no pool. Scenes of the whole world (1-3 objects) and, for each merged token (a
32x32-pixel square of one temporal group, what the text model is given), linear heads on the
tower's output that read:

* colour and shape of the object covering the token (or background);
* that object's motion (videos; within a temporal pair the two frames show the first half-patch of
  the move, and the tower's attention within the group can spread it over the object);
* that object's rank from the left by the x of its centre at the start (what descriptions list);
* the number of objects in the scene (every token: a global fact the tower can gather by attention);
* per object, the mean of its tokens over all groups (what a question naming it can fetch), read by
  a shape, a colour and a motion head.

A token is an object's when the object covers at least --object-cover of its square, or it is the
object's best-covered token in that group; tokens covered 2% or less are background; in between,
no label. Scenes are freshly rendered at the processor's resized size (never repeated) or, with
--cached, the cached training scenes (real codecs and processors), labelled from the scene re-made
from its seed and index. --crop-*: one-object crops (probe V4's trick for shape). The heads are
dropped; only the tower is saved. These labels are facts of the scene, the same facts the answers
state; the text model's loss (train.py) stays on the answers only.
"""

from __future__ import annotations

import argparse
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
from make_data import cached_scenes  # noqa: E402
import shapes_world as sw  # noqa: E402
from probe_vision import RESIZED, frame_times, patchify, place_on_crop, scale_to_canvas  # noqa: E402

IGNORE = -100
HEADS = {"color": 1 + len(sw.COLORS), "shape": 1 + len(sw.SHAPES), "motion": len(sw.MOTIONS), "rank": 3,
         "count": 3}
POOLED = {"shape": len(sw.SHAPES), "color": len(sw.COLORS), "motion": len(sw.MOTIONS)}
# Regression heads, off unless --weight names them (so that commands without them are unchanged):
# "col", every token's column centre as a fraction of the grid's width. The text model's MRoPE cannot
# tell it left from right: its queries sit a scene-dependent distance past the media, so a fixed query
# sees the width frequencies at a varying phase. A description's order needs the x in the tokens'
# content, and without a loss that asks for it the merger drops it (dense10's merged tokens: linear R^2
# of the column about 0).
REGRESS = {"col": 12.0}   # the scale that makes the loss of always predicting the mean (variance 1/12) 1
SAMPLES = 8            # coverage samples per merged token and axis (every 4 pixels)
OBJECT_COVER = 0.2     # an object covering at least this share of the token's square labels it (--object-cover)
BACKGROUND_COVER = 0.02


def resized_scene(rng: np.random.Generator, sampling: str, crop: int = 0) -> sw.Scene:
    """A scene of the world, its geometry scaled to the processor's resized canvas. crop: its first
    object alone on a crop x crop canvas, at its size (at most 0.6 of the crop), its motion shortened
    to fit: many examples of an object's look for little compute (probe V4)."""
    kind = "image" if sampling == "img" else "video"
    s = sw.make_scene(rng, kind)
    scale_to_canvas(s, *RESIZED[(kind, s.width, s.height)])
    if crop:
        s.objects, s.width, s.height = s.objects[:1], crop, crop
        place_on_crop(s.objects[0], crop, rng)
    return s


def token_labels(s: sw.Scene, times: list[float], grid: np.ndarray) -> dict[str, np.ndarray]:
    """Per merged token (temporal group, row, column in the tower's output order) the heads' labels."""
    gt, mh, mw = int(grid[0]), int(grid[1]) // 2, int(grid[2]) // 2
    off = (np.arange(SAMPLES) + 0.5) * (32 / SAMPLES)
    ys = (np.arange(mh)[:, None] * 32 + off[None, :]).ravel()
    xs = (np.arange(mw)[:, None] * 32 + off[None, :]).ravel()
    order = sorted(range(len(s.objects)), key=lambda i: s.objects[i].start_center_x())
    rank_of = {j: r for r, j in enumerate(order)}
    out = {k: np.full((gt, mh, mw), IGNORE, np.int64) for k in list(HEADS) + ["object"]}
    out["count"][:] = len(s.objects) - 1
    out_col = mc.merged_columns(gt * mh * mw, mw).reshape(gt, mh, mw)
    for t in range(gt):
        cover = np.zeros((len(s.objects), mh, mw))
        for j, o in enumerate(s.objects):
            for f in times[2 * t:2 * t + 2]:
                x0, y0 = o.corner_at(f)
                inside = sw._coverage(o.shape, x0, y0, o.side, xs[None, :], ys[:, None])
                cover[j] += inside.reshape(mh, SAMPLES, mw, SAMPLES).mean(axis=(1, 3)) / 2
        best, share = cover.argmax(0), cover.max(0)
        background = share <= BACKGROUND_COVER
        out["color"][t][background] = 0
        out["shape"][t][background] = 0
        for j, o in enumerate(s.objects):
            mine = (best == j) & (share >= OBJECT_COVER)
            peak = np.unravel_index(cover[j].argmax(), cover[j].shape)   # a small object's best token
            if best[peak] == j and cover[j][peak] > BACKGROUND_COVER:
                mine[peak] = True
            out["color"][t][mine] = 1 + list(sw.COLORS).index(o.color)
            out["shape"][t][mine] = 1 + sw.SHAPES.index(o.shape)
            out["rank"][t][mine] = rank_of[j]
            out["object"][t][mine] = j
            if s.kind == "video":
                out["motion"][t][mine] = sw.MOTIONS.index(o.motion)
    out = {k: v.reshape(-1) for k, v in out.items()}
    out["col"] = out_col.reshape(-1)
    return out


def dense_item(rng: np.random.Generator, sampling: str, crop: int = 0) -> dict:
    s = resized_scene(rng, sampling, crop)
    times = frame_times(s, sampling)
    pv, grid = patchify(np.stack([sw.render_frame(s, f) for f in times]))
    return labelled(pv, grid, s, times)


def labelled(pv: np.ndarray, grid: np.ndarray, s: sw.Scene, times: list[float]) -> dict:
    """An item: the pixels, the grid, the per-token labels and per object (shape, colour, motion)."""
    objects = [(sw.SHAPES.index(o.shape), list(sw.COLORS).index(o.color),
                sw.MOTIONS.index(o.motion) if s.kind == "video" else IGNORE) for o in s.objects]
    return dict(pv=pv, grid=grid, labels=token_labels(s, times, grid), objects=objects)


def cached_item(path: str, sampling_rng: np.random.Generator) -> dict:
    """A scene cached by make_data.py (pixels through the real codecs and processors), its labels from
    the scene re-made from its seed and index (make_data.py: scene i is default_rng([seed, i]) alone),
    its geometry scaled to the processor's resized canvas (the grid)."""
    from make_data import scene_kind
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        sampling = "img" if meta["kind"] == "image" else ("fps2" if sampling_rng.random() < 0.5 else "frames8")
        pv, grid = z[f"pv_{sampling}"], z[f"grid_{sampling}"].astype(np.int64)
    seed, i = (int(v) for v in Path(path).stem.split("-"))
    rng = np.random.default_rng([seed, i])
    s = sw.make_scene(rng, scene_kind(rng), zoom=s_is_zoom(path))
    assert [q for _, q, _ in sw.questions(s)] == [q["question"] for q in meta["questions"]], path
    scale_to_canvas(s, int(grid[2]) * 16, int(grid[1]) * 16)
    return labelled(pv, grid, s, frame_times(s, sampling))


def s_is_zoom(path: str) -> bool:
    return Path(path).parent.name == "zoom"


class DenseProbe(nn.Module):
    def __init__(self, vision_cfg):
        super().__init__()
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
        self.tower = Qwen3VLVisionModel._from_config(vision_cfg, attn_implementation="sdpa", dtype=torch.float32)
        d = vision_cfg.out_hidden_size
        self.heads = nn.ModuleDict({k: nn.Linear(d, n) for k, n in HEADS.items()})
        self.pooled = nn.ModuleDict({k: nn.Linear(d, n) for k, n in POOLED.items()})
        self.regress = nn.ModuleDict({k: nn.Linear(d, 1) for k in REGRESS})

    def forward(self, pv: torch.Tensor, grids: torch.Tensor, object_of: torch.Tensor) -> dict[str, torch.Tensor]:
        merged = self.tower(pv, grids).pooler_output      # [sum of merged tokens, d], scenes in order
        out = {k: head(merged) for k, head in self.heads.items()}
        out.update({k: head(merged)[:, 0] for k, head in self.regress.items()})
        # per object: the mean of its tokens over all temporal groups (what a question that names it
        # can fetch by attention), then the object's shape / colour / motion
        keep = object_of != IGNORE
        n_obj = int(object_of.max()) + 1 if bool(keep.any()) else 0
        sums = torch.zeros(n_obj, merged.shape[1]).index_add(0, object_of[keep], merged[keep])
        counts = torch.zeros(n_obj).index_add(0, object_of[keep], torch.ones(int(keep.sum())))
        pooled = sums / counts.clamp(min=1)[:, None]
        for k, head in self.pooled.items():
            out["pooled_" + k] = head(pooled)
        out["pooled_seen"] = counts > 0
        return out


def batch_tensors(items: list[dict]):
    pv = torch.from_numpy((np.concatenate([it["pv"] for it in items]).astype(np.float32) - 127.5) / 127.5)
    grids = torch.from_numpy(np.stack([it["grid"] for it in items]))
    labels = {k: torch.from_numpy(np.concatenate([it["labels"][k] for it in items])) for k in list(HEADS) + list(REGRESS)}
    ids, objects, base = [], [], 0
    for it in items:
        o = it["labels"]["object"]
        ids.append(np.where(o == IGNORE, IGNORE, o + base))
        objects += it["objects"]
        base += len(it["objects"])
    labels["object"] = torch.from_numpy(np.concatenate(ids))
    labels["objects"] = torch.tensor(objects).reshape(-1, 3)      # per object: shape, colour, motion
    return pv, grids, labels


def pooled_targets(logits: dict, labels: dict) -> dict[str, torch.Tensor]:
    seen = logits["pooled_seen"]
    objects = labels["objects"][:len(seen)]
    tgt = {k: objects[:, i].clone() for i, k in enumerate(POOLED)}
    for v in tgt.values():
        v[~seen] = IGNORE
    return tgt


WEIGHTS: dict[str, float] = {}   # --weight name=w (default 1; 0 drops the head's loss)


def losses(logits: dict, labels: dict) -> torch.Tensor:
    total = 0.0
    tgt = pooled_targets(logits, labels)
    for k, y in [(k, labels[k]) for k in HEADS] + [("pooled_" + k, tgt[k]) for k in POOLED]:
        w = WEIGHTS.get(k, 1.0)
        if w and bool((y != IGNORE).any()):     # all ignored would be nan
            total = total + w * F.cross_entropy(logits[k], y, ignore_index=IGNORE)
    for k, scale in REGRESS.items():
        w = WEIGHTS.get(k, 0.0)
        if w:
            total = total + w * scale * F.mse_loss(logits[k], labels[k])
    return total


def hits(logits: dict, labels: dict) -> dict[str, tuple[int, int]]:
    """Per head: (correct, labelled) over tokens; object tokens only for colour and shape (the
    background is most tokens and easy)."""
    out = {}
    for k in HEADS:
        keep = labels[k] != IGNORE
        if k in ("color", "shape"):
            keep &= labels[k] > 0
        pred = logits[k].argmax(-1)
        out[k] = (int((pred[keep] == labels[k][keep]).sum()), int(keep.sum()))
    for k, y in pooled_targets(logits, labels).items():
        keep = y != IGNORE
        pred = logits["pooled_" + k].argmax(-1)
        out["obj_" + k] = (int((pred[keep] == y[keep]).sum()), int(keep.sum()))
    for k in REGRESS:   # printed as the mean absolute error
        out[k + "_mae"] = (float((logits[k].detach() - labels[k]).abs().sum()), int(labels[k].numel()))
    return out


def summary(acc: dict[str, list[int]]) -> str:
    return " ".join(f"{k} {c / max(1, n):.2f}" for k, (c, n) in acc.items())


def add(acc: dict, h: dict) -> None:
    for k, (c, n) in h.items():
        acc.setdefault(k, [0, 0])
        acc[k][0] += c
        acc[k][1] += n


def evaluate(model: DenseProbe, items: list[dict], bs: int = 8) -> str:
    model.eval()
    acc: dict = {}
    with torch.no_grad():
        for i in range(0, len(items), bs):
            pv, grids, labels = batch_tensors(items[i:i + bs])
            add(acc, hits(model(pv, grids, labels["object"]), labels))
    model.train()
    return summary(acc)


def main() -> None:
    global OBJECT_COVER
    ap = argparse.ArgumentParser()
    ap.add_argument("--samplings", default="img,fps2,frames8", help="comma list of img, fps2, frames8")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--held", type=int, default=96, help="held-out scenes (their own seed)")
    ap.add_argument("--save", type=Path, default=None, help="the tower's weights (train.py --init-vision)")
    ap.add_argument("--cached", default="", help="comma list of make_data.py folders: their scenes (through the "
                    "real codecs and processors) labelled from their re-made geometry")
    ap.add_argument("--cached-share", type=float, default=0.5, help="with --cached: each item is a cached one "
                    "with this probability, else freshly rendered")
    ap.add_argument("--weight", action="append", default=[], help="a loss's weight, e.g. shape=3 or rank=0 "
                    "(token heads: color, shape, motion, rank, count; per object: pooled_shape, ...; regression: col, "
                    "default 0)")
    ap.add_argument("--object-cover", type=float, default=OBJECT_COVER,
                    help="the share of a token's square an object must cover to label it")
    ap.add_argument("--override", action="append", default=[], help="pilot only: vision.x=json, e.g. "
                    "vision.hidden_size=128")
    ap.add_argument("--crop", type=int, default=64, help="with --crop-until: the crop canvas's side")
    ap.add_argument("--crop-until", type=int, default=0, help="one object alone on a crop before this step")
    ap.add_argument("--crop-batch", type=int, default=32, help="items a step while on crops")
    ap.add_argument("--crop-mix", action="store_true", help="crops beside the full scenes in each step (not instead)")
    ap.add_argument("--crop-from", type=int, default=0, help="crops from this step on (until --crop-until)")
    ap.add_argument("--init", type=Path, default=None, help="continue from a --save file (tower and heads)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    print(f"args {vars(a)}", flush=True)
    OBJECT_COVER = a.object_cover
    mc.apply_overrides(a.override)
    for w in a.weight:
        k, v = w.split("=")
        WEIGHTS[k] = float(v)
    samplings = a.samplings.split(",")
    held = [dense_item(np.random.default_rng([a.seed, 10**6 + i]), samplings[i % len(samplings)])
            for i in range(a.held)]
    model = DenseProbe(mc.make_config().vision_config)
    if a.init:      # continue a --save file: its tower and heads (a fresh optimizer and schedule)
        saved = torch.load(a.init, map_location="cpu", weights_only=False)
        model.tower.load_state_dict(saved["vision"])
        model.load_state_dict(saved["heads"], strict=False)
        print(f"tower and heads from {a.init}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / a.warmup) * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, s / a.steps)))))
    rng = np.random.default_rng(a.seed)
    c0, t0 = time.process_time(), time.time()
    acc: dict = {}
    loss_sum, n = 0.0, 0
    cached = cached_scenes(a.cached)
    # held out: the last --held / 2 cached scenes (with make train's folders: the last zoomed ones)
    held_files = set(cached[::-1][:a.held // 2])
    held_cached = [cached_item(f, np.random.default_rng(i)) for i, f in enumerate(cached[::-1][:a.held // 2])]
    cached = [f for f in cached if f not in held_files]
    print(f"{len(cached)} cached scenes", flush=True)

    def item(crop: int) -> dict:
        if not crop and cached and rng.random() < a.cached_share:
            return cached_item(cached[rng.integers(len(cached))], rng)
        return dense_item(rng, samplings[rng.integers(len(samplings))], crop)

    for step in range(1, a.steps + 1):
        crop = a.crop if a.crop_from <= step <= a.crop_until else 0
        if a.crop_mix:      # each step: full scenes and, until --crop-until, crops beside them
            batch = [item(0) for _ in range(a.batch)] + [item(crop) for _ in range(a.crop_batch if crop else 0)]
        else:
            batch = [item(crop) for _ in range(a.crop_batch if crop else a.batch)]
        pv, grids, labels = batch_tensors(batch)
        logits = model(pv, grids, labels["object"])
        loss = losses(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        add(acc, hits(logits, labels))
        loss_sum += float(loss.detach())
        n += 1
        if step % a.eval_every == 0 or step == a.steps:
            print(f"step {step} cpu {time.process_time() - c0:.0f}s wall {time.time() - t0:.0f}s "
                  f"loss {loss_sum / n:.3f} train [{summary(acc)}] held [{evaluate(model, held)}]"
                  + (f" held cached [{evaluate(model, held_cached)}]" if held_cached else ""), flush=True)
            acc, loss_sum, n = {}, 0.0, 0
    if a.save:
        a.save.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"vision": model.tower.state_dict(), "heads": {k: v for k, v in model.state_dict().items()
                                                                   if not k.startswith("tower.")}, "args": {k: str(v) for k, v in vars(a).items()}}, a.save)


if __name__ == "__main__":
    main()
