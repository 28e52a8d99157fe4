#!/usr/bin/env python3
"""Train the tiny Qwen3-VL on the cached shapes-world scenes (make_data.py), from scratch, on CPU.

  train.py --steps 3000 --data tools/train/out/data --out tools/train/out/ckpt.pt

One step = one scene: the vision encoder runs once on its pixels; the shared prompt prefix
(<|im_start|>user\\n + the media tokens) runs once through the text decoder; then K questions of the
scene run as one batch on that prefix's KV cache. The loss is on the answer tokens (and the closing
<|im_end|>) only, computed on those positions only, with the exact full-vocabulary softmax (see
model_config.py). Deterministic for a seed (CPU, float32), given the same data files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import model_config as mc  # noqa: E402
from make_data import cached_scenes  # noqa: E402

PATCH_DIM = 3 * 2 * 16 * 16


def load_vocab(path: Path, extra: list[str] = ()) -> list[int]:
    """The used-token set: the world's (qwen_inputs.world_vocab) plus the tokens of `extra`, written
    beside the checkpoint on the first run and read from there after."""
    import qwen_inputs as qi
    needed = {t for text in extra for t in qi.tokens(text)}
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(set(qi.world_vocab()) | needed)))
    used = json.loads(path.read_text())
    if not needed <= set(used):
        sys.exit(f"train.py: {path} lacks tokens the options need; remove it to have it made again")
    return used


class Remap:
    """Real token ids <-> the training model's small vocabulary."""

    def __init__(self, used: list[int]):
        self.used = used
        self.table = {t: i for i, t in enumerate(used)}
        self.n_zero = mc.VOCAB - len(used)

    def __call__(self, ids) -> list[int]:
        return [self.table[int(t)] for t in ids]

    def config_ids(self) -> dict:
        return dict(image_token_id=self.table[mc.IMAGE_PAD], video_token_id=self.table[mc.VIDEO_PAD],
                    vision_start_token_id=self.table[mc.VISION_START],
                    vision_end_token_id=self.table[mc.VISION_END])


def build_model(remap: Remap, seed: int):
    from transformers import Qwen3VLForConditionalGeneration
    torch.manual_seed(seed)
    cfg = mc.make_config(len(remap.used), remap.config_ids())
    model = Qwen3VLForConditionalGeneration._from_config(cfg, attn_implementation="sdpa", dtype=torch.float32)
    return model


def load_scene(path: str) -> tuple[dict, dict]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays.pop("meta")).decode())
    return meta, arrays


def vision_batch(model, scenes: list[tuple[dict, dict, str]]):
    """The vision encoder once over several scenes (concatenated patches, one grid row each: the
    encoder attends within each frame only, so this equals one call per scene); per scene its
    merged embeddings and DeepStack features."""
    pvs, grids = [], []
    for meta, arrays, sampling in scenes:
        pvs.append(arrays[f"pv_{sampling}"])
        grids.append(arrays[f"grid_{sampling}"].astype(np.int64))
    pv = torch.from_numpy((np.concatenate(pvs, 0).astype(np.float32) - 127.5) / 127.5)
    grid = torch.from_numpy(np.stack(grids, 0))
    vis = model.model.get_image_features(pv, grid, return_dict=True)
    out = []
    for i in range(len(scenes)):
        out.append((vis.pooler_output[i], [f[i] for f in vis.deepstack_features], grid[i:i + 1]))
    return out


def cached_vision(model, scenes, paths, cache: dict):
    """--cache-vision: the tower and its mergers are frozen for the whole run, so each scene's merged
    embeddings and DeepStack features are computed once (no autograd) and kept; a step then costs the
    text model alone."""
    out = []
    for scene, (path, _) in zip(scenes, paths):
        key = (path, scene[2])
        if key not in cache:
            with torch.no_grad():
                cache[key] = vision_batch(model, [scene])[0]
        out.append(cache[key])
    return out


class FixedColumnHead(torch.nn.Module):
    """--col-fixed S: the column read along one fixed random unit direction u of the RMS-normalised
    merged token (what the text model's first RMSNorm sees), 0.5 + S * (u . token / rms(token)),
    nothing trainable. A trained linear head reads the column from a direction of tiny variance
    (col9's tower: 0.14% of the normalised tokens' variance), which attention can hardly use; a fixed
    scale S forces a spread of about 0.29 / S along u (S = 1/12: ~3.5, ~10% of the variance)."""

    def __init__(self, dim: int, scale: float, seed: int):
        super().__init__()
        u = torch.randn(dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("u", u / u.norm())
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xn = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return (0.5 + self.scale * (xn @ self.u))[:, None]


def column_loss(head, vision) -> torch.Tensor:
    """--col-weight: a linear head (dropped at export) reads each merged token's column (its centre as a
    fraction of the grid's width) from the merged tokens the text model is given; 12 * squared error, so
    that predicting the mean costs 1. pretrain_tower.py --weight col puts the column there; without a
    loss that keeps it, the text training's updates to the tower erase it (probe_column.py: R^2 .86
    before, .08 after)."""
    preds, cols = [], []
    for embeds, _, grid in vision:
        preds.append(head(embeds)[:, 0])
        cols.append(torch.from_numpy(mc.merged_columns(embeds.shape[0], int(grid[0, 2]) // 2)))
    return 12 * F.mse_loss(torch.cat(preds), torch.cat(cols))


def scene_losses(model, remap: Remap, meta: dict, arrays: dict, sampling: str, qsel: list[int],
                 head_ids: list[int], tail_ids: list[int], vision, end_weight: float, aux_layer: int | None = None):
    """Per answer token: cross-entropy and weight (the closing <|im_end|> weighs end_weight); the
    question index of each token; per-question exact flags (teacher-forced argmax) and templates."""
    kind = meta["kind"]
    embeds, deep, grid = vision
    media = [int(t) for t in arrays[f"media_{sampling}"]]
    inner = model.model

    # prefix: <|im_start|>user\n + media
    prefix = remap(head_ids + media)
    pid = torch.tensor([prefix])
    pad_id = remap.table[mc.IMAGE_PAD if kind == "image" else mc.VIDEO_PAD]
    tt = (pid == pad_id).long() * (1 if kind == "image" else 2)
    pos, _ = inner.get_rope_index(pid, tt, image_grid_thw=grid if kind == "image" else None,
                                  video_grid_thw=grid if kind == "video" else None)
    lm = inner.language_model
    x = lm.embed_tokens(pid)
    vmask = (pid == pad_id)
    x = x.masked_scatter(vmask[..., None], embeds)
    from transformers import DynamicCache
    cache = DynamicCache(config=lm.config)
    lm(inputs_embeds=x, position_ids=pos, past_key_values=cache, use_cache=True,
       visual_pos_masks=vmask, deepstack_visual_embeds=deep)
    start = int(pos.max()) + 1

    # suffixes: question + tail + answer, right-padded (pads come last: causal attention never sees them)
    qs = [meta["questions"][i] for i in qsel]
    seqs, targets = [], []
    for q in qs:
        s = remap(q["q_ids"] + tail_ids + q["a_ids"])
        seqs.append(s)
        targets.append((len(q["q_ids"]) + len(tail_ids) - 1, remap(q["a_ids"])))
    K, L = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros(K, L, dtype=torch.long)
    for k, s in enumerate(seqs):
        ids[k, :len(s)] = torch.tensor(s)
    spos = (torch.arange(L) + start).view(1, 1, L).expand(3, K, L)
    cache.batch_repeat_interleave(K)
    out = lm(inputs_embeds=lm.embed_tokens(ids), position_ids=spos, past_key_values=cache, use_cache=True,
             output_hidden_states=aux_layer is not None)
    h = out.last_hidden_state                                          # [K, L, H]
    rows, cols, tgt, w = [], [], [], []
    for k, (first, a) in enumerate(targets):
        for j, t in enumerate(a):
            rows.append(k); cols.append(first + j); tgt.append(t)
            w.append(end_weight if j == len(a) - 1 else 1.0)           # a_ids end with <|im_end|>
    hs = h[torch.tensor(rows), torch.tensor(cols)]                    # [T, H]
    logits = hs @ lm.embed_tokens.weight.T                            # tied lm_head, used rows
    zero_col = torch.full((logits.shape[0], 1), math.log(remap.n_zero))
    full = torch.cat([logits, zero_col], 1)
    tgt_t = torch.tensor(tgt)
    ce = F.cross_entropy(full, tgt_t, reduction="none")
    with torch.no_grad():
        ok = (logits.argmax(-1) == tgt_t) & (logits.max(-1).values > 0)
        exact, i = [], 0
        for first, a in targets:
            exact.append(bool(ok[i:i + len(a)].all()))
            i += len(a)
    h_answer = None
    if aux_layer is not None:  # the residual stream after aux_layer decoder layers, at the answer position
        h_answer = out.hidden_states[aux_layer][torch.arange(K), torch.tensor([first for first, _ in targets])]
    return ce, torch.tensor(w), torch.tensor(rows), exact, [q["template"] for q in qs], h_answer


def batch_loss(parts, weighting: str, templates: list[str], describe_weight: float = 1.0,
               batch_templates: list[str] | None = None):
    """parts: per scene (ce, w, question index); templates: the batch's questions' templates in
    order. 'token': the weighted mean over all answer tokens of the batch (long descriptions
    dominate); 'question': each question's weighted token mean, then the mean over the batch's
    questions (a one-word answer counts as much as a description), a description counting
    describe_weight questions. batch_templates (--procs, 'question' only): the templates of the whole
    batch when parts hold one rank's share of it; the share's loss is then its part of the batch's
    mean, so that the ranks' losses (and gradients) sum to the batch's."""
    if weighting == "token":
        ce = torch.cat([p[0] for p in parts]); w = torch.cat([p[1] for p in parts])
        return (ce * w).sum() / w.sum()
    per_q = []
    for ce, w, q in parts:
        n = int(q.max()) + 1
        num = torch.zeros(n).index_add(0, q, ce * w)
        den = torch.zeros(n).index_add(0, q, w)
        per_q.append(num / den)
    per_q = torch.cat(per_q) if per_q else torch.zeros(0)
    if describe_weight == 1.0 and batch_templates is None:  # the plain mean, as before the options
        return per_q.mean()                                  # (bit-identical runs)
    def weight(t: str) -> float:
        return describe_weight if t == "describe" else 1.0
    qw = torch.tensor([weight(t) for t in templates])
    total = qw.sum() if batch_templates is None else sum(weight(t) for t in batch_templates)
    return (per_q * qw).sum() / total


def scene_facts(path: str, cache: dict[str, tuple[str, int]]) -> tuple[str, int]:
    """(kind, number of objects) of a cached scene."""
    if path not in cache:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
        count = [q["answer"] for q in meta["questions"] if q["template"] == "count"][0]
        cache[path] = (meta["kind"], {"one": 1, "two": 2, "three": 3}[count])
    return cache[path]


def pick_questions(rng: np.random.Generator, meta: dict, max_q: int) -> list[int]:
    n = len(meta["questions"])
    if n <= max_q:
        return list(range(n))
    # always keep the description (the longest answer) and its hops (chain), sample the rest
    d = [i for i, q in enumerate(meta["questions"]) if q["template"] in ("describe", "chain", "order", "order_v")]
    rest = [i for i in range(n) if i not in d]
    return sorted(d + list(rng.choice(rest, size=max_q - len(d), replace=False)))


CHAIN_FIRST = "Which object comes first?"
CHAIN_AFTER = "Which object comes after the {name}?"


def description_items(sentence: str) -> list[str]:
    """The items of a world description, in its order: "A red circle moving right, a blue square
    and a green triangle." -> ["a red circle moving right", "a blue square", "a green triangle"]
    (the world's words hold no " and " and no ", ")."""
    text = sentence.rstrip(".")
    text = text[0].lower() + text[1:]
    head, sep, last = text.rpartition(" and ")
    return (head.split(", ") if sep else []) + [last]


def chain_questions(meta: dict) -> list[dict]:
    """Training only (--chain-questions): a description taken apart into its hops, each with the
    named object in the question: "Which object comes first?" -> the first item, and for every item
    but the last, "Which object comes after the {color} {shape}?" -> the next item."""
    import qwen_inputs as qi
    describe = [q["answer"] for q in meta["questions"] if q["template"] == "describe"]
    if not describe:
        return []
    items = description_items(describe[0])
    pairs = [(CHAIN_FIRST, items[0])]
    pairs += [(CHAIN_AFTER.format(name=" ".join(a.split()[1:3])), b) for a, b in zip(items, items[1:])]
    return [{"template": "chain", "question": q, "answer": ans, "q_ids": list(qi.tokens(q)),
             "a_ids": list(qi.tokens(ans + qi.END))} for q, ans in pairs]


ORDER_LEFTMOST = "Which object is leftmost?"
ORDER_RIGHTMOST = "Which object is rightmost?"
ORDER_PAIR = "Is the {a} left of the {b}?"


def order_names(description: str) -> list[str]:
    """The objects of a world description as "{color} {shape}", left to right."""
    return [" ".join(item.split()[1:3]) for item in description_items(description)]


def order_qa(names: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The left/right questions about objects named left to right (two or more): the leftmost and
    rightmost ones, and every ordered pair, as (question, answer)."""
    ends = [(ORDER_LEFTMOST, names[0]), (ORDER_RIGHTMOST, names[-1])]
    pairs = [(ORDER_PAIR.format(a=names[i], b=names[j]), "yes" if i < j else "no")
             for i in range(len(names)) for j in range(len(names)) if i != j]
    return ends, pairs


def order_questions(meta: dict, rng: np.random.Generator, pairs: int) -> list[dict]:
    """Training only (--order-questions): questions whose answers depend on left and right alone,
    taken from the description's order (by the x of the centres at the start): "Which object is
    leftmost?" / "...rightmost?" -> "red circle", and `pairs` of the ordered pairs "Is the {a} left of
    the {b}?" -> "yes" | "no" (drawn from rng; half of all ordered pairs are "yes")."""
    import qwen_inputs as qi
    describe = [q["answer"] for q in meta["questions"] if q["template"] == "describe"]
    names = order_names(describe[0]) if describe else []
    if len(names) < 2:
        return []
    ends, ordered = order_qa(names)
    qa = ends + [ordered[k] for k in rng.permutation(len(ordered))[:pairs]]
    template = "order" if meta["kind"] == "image" else "order_v"  # counted apart in the logs
    return [{"template": template, "question": q, "answer": ans, "q_ids": list(qi.tokens(q)),
             "a_ids": list(qi.tokens(ans + qi.END))} for q, ans in qa]


def order_strings() -> list[str]:
    """Every text piece order_questions can add (for the used-token set)."""
    import shapes_world as sw
    import qwen_inputs as qi
    names = [f"{color} {shape}" for color in sw.COLORS for shape in sw.SHAPES]
    out = [ORDER_LEFTMOST, ORDER_RIGHTMOST, "yes" + qi.END, "no" + qi.END]
    out += [name + qi.END for name in names]
    out += [ORDER_PAIR.format(a=a, b=b) for a in names for b in names if a != b]
    return out


def chain_strings() -> list[str]:
    """Every text piece chain_questions can add (for the used-token set)."""
    import shapes_world as sw
    import qwen_inputs as qi
    out = [CHAIN_FIRST]
    for color in sw.COLORS:
        for shape in sw.SHAPES:
            out.append(CHAIN_AFTER.format(name=f"{color} {shape}"))
            out += [sw.item_phrase(color, shape, m) + qi.END for m in [None, *sw.MOTION_PHRASE]]
    return out


MOTIONS = ["still", "left", "right", "up", "down"]


def aux_targets(path: str, zoomed: bool, meta: dict, cache: dict) -> list:
    """Per question of a scene: (start centre x, y, end centre x, y as fractions of the canvas, motion
    index or -1 for images) of the object the question names, or None (count, describe). The scene is
    re-made from its seed and index (make_data.py: scene i comes from default_rng([seed, i]) alone)
    without rendering; its questions are checked against the cached ones."""
    if path in cache:
        return cache[path]
    import shapes_world as sw
    from make_data import scene_kind
    seed, i = (int(v) for v in Path(path).stem.split("-"))
    rng = np.random.default_rng([seed, i])
    scene = sw.make_scene(rng, scene_kind(rng), zoom=zoomed)
    qs = sw.questions(scene)
    assert [q for _, q, _ in qs] == [q["question"] for q in meta["questions"]], path
    out = []
    for template, question, _ in qs:
        words = question.rstrip("?").split()
        if template == "color":
            named = [o for o in scene.objects if o.shape == words[-1]]
        elif template == "shape":
            named = [o for o in scene.objects if o.color == words[-2]]
        elif template == "motion":
            named = [o for o in scene.objects if o.color == words[-3] and o.shape == words[-2]]
        else:
            named = []
        if len(named) != 1:
            out.append(None)
            continue
        o = named[0]
        centre = [(x + o.side / 2) / scene.width if k == 0 else (x + o.side / 2) / scene.height
                  for f in (0.0, 1.0) for k, x in enumerate(o.corner_at(f))]
        out.append((centre, MOTIONS.index(o.motion) if scene.kind == "video" else -1))
    cache[path] = out
    return out


def aux_loss(head, h_answer, targets) -> torch.Tensor:
    """The auxiliary loss: from the residual stream at the position that predicts the answer's first token
    (after --aux-layer decoder layers), a linear head reads where the named object starts and ends
    (16 * squared error in canvas fractions: about 1 for a head that predicts the mean place) and how
    it moves (cross-entropy over the five motions, videos only)."""
    rows = [k for k, t in enumerate(targets) if t is not None]
    if not rows:
        return h_answer.sum() * 0
    pred = head(h_answer[torch.tensor(rows)])
    pos = torch.tensor([targets[k][0] for k in rows])
    loss = 16 * F.mse_loss(pred[:, :4], pos)
    motion = torch.tensor([targets[k][1] for k in rows])
    vid = motion >= 0
    if bool(vid.any()):
        loss = loss + F.cross_entropy(pred[vid, 4:], motion[vid])
    return loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE / "out/data"),
                    help="directories of cached scenes (make_data.py), comma-separated")
    ap.add_argument("--out", type=Path, default=HERE / "out/ckpt.pt")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-q", type=int, default=6)
    # 1 thread: on 2 shared cores, OpenMP's spinning threads made a step 20x slower than one thread
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--procs", type=int, default=1, help="data-parallel processes (a core each): each "
                    "computes its share of every batch; needs --weighting question")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (and save) after this long")
    ap.add_argument("--max-cpu-minutes", type=float, default=0, help="pilots: stop after this much CPU time "
                    "(comparable under a varying load of the shared machine)")
    ap.add_argument("--stop-at", type=int, default=0, help="stop (and save) after this step; the schedule "
                    "still runs over --steps")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights "
                    "(a second stage: fresh optimizer and schedule)")
    ap.add_argument("--init-vision", type=Path, default=None, help="start the vision tower from these weights "
                    "(probe_vision.py --save: a tower pre-trained on cropped one-object scenes)")
    ap.add_argument("--max-scene", type=int, default=0, help="use scenes with index < this (0 = all present)")
    ap.add_argument("--images-until", type=int, default=0, help="curriculum: image scenes only before this step")
    ap.add_argument("--single-until", type=int, default=0, help="curriculum: one-object scenes only before this step")
    ap.add_argument("--zoom-data", type=Path, default=None, help="curriculum: the zoomed one-object scenes "
                    "(make_data.py --zoom); unused unless given")
    ap.add_argument("--zoom-until", type=int, default=0, help="with --zoom-data: zoomed scenes only before this step")
    ap.add_argument("--zoom-share", type=float, default=0.0, help="with --zoom-data: from --zoom-until on, "
                    "each scene is a zoomed one with this probability")
    ap.add_argument("--freeze-vision-until", type=int, default=0,
                    help="the vision tower's patch embedding, position embedding and blocks take no updates "
                         "before this step (the merger and DeepStack mergers train): the text side learns to "
                         "read a pre-trained tower (--init-vision) before it moves")
    ap.add_argument("--freeze-mergers", action="store_true",
                    help="with --freeze-vision-until: the merger and DeepStack mergers are frozen too (a tower "
                         "pre-trained through its merger, pretrain_tower.py, keeps the features it was taught "
                         "while the text model is still random)")
    ap.add_argument("--cache-vision", action="store_true",
                    help="with the tower and mergers frozen for the whole run (--freeze-vision-until >= --steps, "
                         "--freeze-mergers): compute each scene's vision features once and keep them in memory")
    ap.add_argument("--batch", type=int, default=1, help="scenes per optimizer step (vision batched)")
    ap.add_argument("--weighting", choices=["token", "question"], default="token",
                    help="loss: mean over answer tokens, or over questions (each its tokens' mean)")
    ap.add_argument("--describe-weight", type=float, default=1.0,
                    help="with --weighting question: a description counts this many questions in the mean")
    ap.add_argument("--end-weight", type=float, default=1.0, help="weight of the closing <|im_end|> target")
    ap.add_argument("--schedule", choices=["cosine", "const"], default="cosine")
    ap.add_argument("--aux-weight", type=float, default=0.0,
                    help="weight of the auxiliary loss (aux_loss): a linear head, dropped at export, reads the named "
                         "object's start and end position and its motion from the answer position's hidden state")
    ap.add_argument("--aux-layer", type=int, default=2,
                    help="with --aux-weight: read the residual stream after this many decoder layers (the last "
                         "layer's output also makes the answer's logits through the tied embedding: reading it "
                         "there, the one-object colour answers stayed at 0 for 1000 steps)")
    ap.add_argument("--aux-templates", default="color,shape,motion",
                    help="with --aux-weight: the templates whose answer positions get the auxiliary loss")
    ap.add_argument("--aux-until", type=int, default=0, help="with --aux-weight: only before this step (0 = always)")
    ap.add_argument("--aux-text-only", action="store_true",
                    help="with --aux-weight: the auxiliary loss trains the text model and its head only; its "
                         "gradient stops at the visual embeddings (the vision tower and mergers learn from the "
                         "answers alone)")
    ap.add_argument("--col-weight", type=float, default=0.0,
                    help="weight of a loss that keeps each merged token's column readable from the merged tokens "
                         "(column_loss; its head is dropped at export)")
    ap.add_argument("--col-fixed", type=float, default=0.0, metavar="S",
                    help="with --col-weight: read the column with FixedColumnHead(S) instead of a trained linear head")
    ap.add_argument("--chain-questions", action="store_true",
                    help="training only: add the description's hops as questions (chain_questions), each "
                         "kept like the description; raise --max-q to keep as many of the others")
    ap.add_argument("--order-questions", type=int, default=-1, metavar="PAIRS",
                    help="training only: add left/right questions (order_questions) with PAIRS pairwise ones per "
                         "scene, each kept like the description; raise --max-q to keep as many of the others")
    ap.add_argument("--only-templates", default="",
                    help="diagnostics: keep only the questions of these templates (comma-separated, e.g. order), "
                         "and only the scenes that have one")
    ap.add_argument("--override", action="append", default=[],
                    help="pilot only: model_config override, e.g. vision.hidden_size=96 or text.num_hidden_layers=4")
    a = ap.parse_args()
    if a.describe_weight <= 0 or (a.describe_weight != 1.0 and a.weighting != "question"):
        ap.error("--describe-weight must be positive and needs --weighting question")
    if a.col_weight < 0 or (a.col_weight and a.aux_text_only):
        ap.error("--col-weight must be >= 0 and does not combine with --aux-text-only")
    known = {"color", "shape", "count", "motion", "describe", "chain", "order", "order_v"}
    if a.only_templates and not set(a.only_templates.split(",")) <= known:
        ap.error(f"--only-templates: each of {','.join(sorted(known))}")
    if a.cache_vision and (a.freeze_vision_until < a.steps or not a.freeze_mergers):
        ap.error("--cache-vision needs --freeze-vision-until >= --steps and --freeze-mergers")
    if a.procs < 1 or (a.procs > 1 and (a.weighting != "question" or a.batch < a.procs or a.max_minutes
                                         or a.max_cpu_minutes)):
        ap.error("--procs must be >= 1; above 1 it needs --weighting question and --batch >= --procs, and "
                 "stops by steps only (--stop-at, not --max-minutes / --max-cpu-minutes: the ranks must agree)")
    if a.procs == 1:
        train(a, 0, 1)
        return
    import torch.multiprocessing as tmp
    vocab_files(a)
    rendezvous = a.out.with_suffix(".rendezvous").resolve()  # absolute: file://relative/... reads as a host
    rendezvous.unlink(missing_ok=True)
    tmp.spawn(train_rank, args=(a, rendezvous), nprocs=a.procs)
    rendezvous.unlink(missing_ok=True)


def vocab_files(a) -> tuple[list[int], list[int], list[int]]:
    """The used-token set and the prompt's head and tail ids, written beside the checkpoint on the
    first run and read from there after (with --procs: written before the ranks start)."""
    used = load_vocab(a.out.parent / "vocab.json", (chain_strings() if a.chain_questions else [])
                      + (order_strings() if a.order_questions >= 0 else []))
    from transformers import AutoTokenizer  # noqa: F401  (import cost paid up front)
    if not (a.out.parent / "head_tail.json").exists():
        import qwen_inputs as qi
        (a.out.parent / "head_tail.json").write_text(json.dumps(
            {"head": list(qi.tokens(qi.HEAD)), "tail": list(qi.tokens(qi.TAIL))}))
    ht = json.loads((a.out.parent / "head_tail.json").read_text())
    return used, ht["head"], ht["tail"]


def train_rank(rank: int, a, rendezvous: Path) -> None:
    """--procs: one of a.procs data-parallel processes (gloo over a rendezvous file)."""
    import datetime
    import torch.distributed as dist
    # a bounded wait: a rank that never arrives (or stalls) ends the run with an error, not a hang
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=a.procs,
                            timeout=datetime.timedelta(minutes=10))
    try:
        train(a, rank, a.procs)
    finally:
        dist.destroy_process_group()


def share_of(scenes: list, rank: int, world: int) -> list[int]:
    """--procs: the batch's scene indices this rank computes. The scenes go, largest first (by media
    tokens, what a scene's step costs), to the rank with the least work so far; every rank computes
    the same split."""
    cost = [len(arrays[f"media_{sampling}"]) for _, arrays, sampling in scenes]
    load, mine = [0] * world, []
    for i in sorted(range(len(scenes)), key=lambda i: (-cost[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        load[r] += cost[i]
        if r == rank:
            mine.append(i)
    return sorted(mine)


def gathered_stats(stats: dict, acc: dict) -> tuple[dict, dict]:
    """--procs: the log's figures over all ranks (losses: the ranks' shares summed; exact flags: pooled)."""
    import torch.distributed as dist
    keys = sorted(k for k in stats if k != "n")
    sums = torch.tensor([stats[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(sums)
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, acc)
    pooled: dict[str, list[int]] = {}
    for part in gathered:
        for t, v in part.items():
            pooled.setdefault(t, []).extend(v)
    return dict(zip(keys, sums.tolist()), n=stats["n"]), pooled


def all_reduce_grads(params: list) -> None:
    """--procs: sum the ranks' gradients (one flat buffer; a parameter a rank did not reach counts 0)."""
    import torch.distributed as dist
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    i = 0
    for p in params:
        p.grad = flat[i:i + p.numel()].view_as(p).clone()
        i += p.numel()


def train(a, rank: int, world: int) -> None:
    """The training loop; with --procs, rank `rank` of `world` data-parallel processes: every rank draws
    the same scenes and questions, computes its share of the batch (share_of), and the summed
    gradients make every rank take the same step. Only rank 0 writes files and logs."""
    torch.set_num_threads(a.threads)
    mc.apply_overrides(a.override)
    if rank:
        sys.stdout = open(os.devnull, "w")
    print(f"args {vars(a)}", flush=True)
    used, head_ids, tail_ids = vocab_files(a)
    remap = Remap(used)

    model = build_model(remap, a.seed)
    if a.init:
        init = torch.load(a.init, map_location="cpu")
        assert init["used"] == remap.used
        model.load_state_dict(init["state_dict"])
        print(f"initialized from {a.init} (step {init['step']})", flush=True)
    if a.init_vision:
        model.model.visual.load_state_dict(mc.tower_state(a.init_vision))  # a tower save or a checkpoint
        print(f"vision tower from {a.init_vision}", flush=True)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params} (vocab rows {len(used)})", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    aux_head = None
    if a.aux_weight:
        aux_head = torch.nn.Linear(mc.TEXT["hidden_size"], 4 + len(MOTIONS))  # after build_model: its init
        groups.append({"params": list(aux_head.parameters()), "weight_decay": 0.0})  # leaves the model's
    col_head = None
    if a.col_weight and a.col_fixed:
        col_head = FixedColumnHead(mc.VISION["out_hidden_size"], a.col_fixed, a.seed)
    elif a.col_weight:
        col_head = torch.nn.Linear(mc.VISION["out_hidden_size"], 1)  # after build_model and aux_head: their inits
        groups.append({"params": list(col_head.parameters()), "weight_decay": 0.0})  # stay as they were
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98), eps=1e-8)
    aux_cache: dict = {}
    vision_cache: dict = {}
    aux_templates = set(a.aux_templates.split(","))

    def lr_at(step: int) -> float:
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        if a.schedule == "const":
            return a.lr
        f = (step - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, f))))

    tower = [p for n, p in model.model.visual.named_parameters()
             if a.freeze_mergers or not n.startswith(("merger", "deepstack"))]

    def set_tower_trainable(on: bool) -> None:
        for p in tower:
            p.requires_grad_(on)

    if a.freeze_vision_until:
        set_tower_trainable(False)
        print(f"vision tower frozen until step {a.freeze_vision_until} ({sum(p.numel() for p in tower)} params)",
              flush=True)
    rng = np.random.default_rng(a.seed)
    only_templates = set(a.only_templates.split(",")) if a.only_templates else set()
    order_rng = np.random.default_rng([a.seed, 77])  # its own stream: the scene sequence is unchanged
    files: list[str] = []
    zoom_files: list[str] = []
    n_zoomed = 0
    facts: dict[str, tuple[str, int]] = {}
    t0, c0 = time.time(), time.process_time()
    stats = {"loss": 0.0, "n": 0}
    acc: dict[str, list[int]] = {}
    for step in range(a.steps):
        if step % 50 == 0 or not files:
            files = cached_scenes(a.data)
            if a.max_scene:
                files = [f for f in files if int(Path(f).stem.split("-")[1]) < a.max_scene]
            if a.zoom_data:
                zoom_files = cached_scenes(str(a.zoom_data))
            if not files or (a.zoom_data and not zoom_files):
                sys.exit(f"train.py: no scene files (make_data.py's *.npz) in --data {a.data}"
                         + (f" or --zoom-data {a.zoom_data}" if a.zoom_data else ""))
            if world > 1:  # rank 0's listing for all: a folder still being written could differ
                import torch.distributed as dist
                listing = [files, zoom_files]
                dist.broadcast_object_list(listing, src=0)
                files, zoom_files = listing
        if a.freeze_vision_until and step == a.freeze_vision_until:
            set_tower_trainable(True)
            print(f"step {step}: vision tower trainable from here", flush=True)
        if a.zoom_data and step == a.zoom_until:
            print(f"step {step}: zoomed scenes only until here; from now on all scenes, "
                  f"a share {a.zoom_share} zoomed", flush=True)
        scenes, qsels, paths = [], [], []
        pool = files
        if step < a.images_until:
            pool = [f for f in pool if scene_facts(f, facts)[0] == "image"]
        if step < a.single_until:
            pool = [f for f in pool if scene_facts(f, facts)[1] == 1]
        if only_templates and only_templates <= {"order", "order_v"}:  # the scenes that have them
            kinds = ({"image"} if "order" in only_templates else set()) | \
                    ({"video"} if "order_v" in only_templates else set())
            pool = [f for f in pool if scene_facts(f, facts)[1] >= 2 and scene_facts(f, facts)[0] in kinds]
        zoom_pool = zoom_files
        if step < a.images_until:
            zoom_pool = [f for f in zoom_pool if scene_facts(f, facts)[0] == "image"]
        for _ in range(a.batch):
            # rng is drawn from only with --zoom-data, so without it the scene sequence is unchanged
            zoomed = bool(a.zoom_data) and (step < a.zoom_until or rng.random() < a.zoom_share)
            n_zoomed += zoomed
            path = zoom_pool[rng.integers(len(zoom_pool))] if zoomed else pool[rng.integers(len(pool))]
            meta, arrays = load_scene(path)
            if a.chain_questions:
                meta["questions"] += chain_questions(meta)
            if a.order_questions >= 0:
                meta["questions"] += order_questions(meta, order_rng, a.order_questions)
            if only_templates:
                meta["questions"] = [q for q in meta["questions"] if q["template"] in only_templates]
            sampling = "img" if meta["kind"] == "image" else ("fps2" if rng.random() < 0.5 else "frames8")
            scenes.append((meta, arrays, sampling))
            paths.append((path, zoomed))
            qsels.append(pick_questions(rng, meta, a.max_q))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch_templates = None
        if world > 1:  # this rank's share of the batch; the loss is normalised by the whole batch's
            batch_templates = [meta["questions"][i]["template"] for (meta, _, _), qsel in zip(scenes, qsels)
                               for i in qsel]
            mine = share_of(scenes, rank, world)
            scenes, qsels, paths = ([x[i] for i in mine] for x in (scenes, qsels, paths))
        vision = cached_vision(model, scenes, paths, vision_cache) if a.cache_vision else vision_batch(model, scenes)
        parts, exact, templates, aux = [], [], [], []
        use_aux = a.aux_weight and (not a.aux_until or step < a.aux_until)
        for (meta, arrays, sampling), qsel, vis, (path, zoomed) in zip(scenes, qsels, vision, paths):
            ce, w, qi, ex, tp, h_answer = scene_losses(model, remap, meta, arrays, sampling, qsel, head_ids,
                                                       tail_ids, vis, a.end_weight,
                                                       a.aux_layer if use_aux else None)
            parts.append((ce, w, qi)); exact += ex; templates += tp
            if use_aux:
                targets = aux_targets(path, zoomed, meta, aux_cache)
                aux.append(aux_loss(aux_head, h_answer,
                                    [targets[i] if meta["questions"][i]["template"] in aux_templates else None
                                     for i in qsel]))
        loss = answer_loss = batch_loss(parts, a.weighting, templates, a.describe_weight, batch_templates)
        if col_head is not None:
            col = column_loss(col_head, vision) / world  # with --procs: the mean of the ranks' means
            stats["col"] = stats.get("col", 0.0) + float(col.detach())
            loss = loss + a.col_weight * col
        if aux:
            aux_mean = torch.stack(aux).mean() / world  # with --procs: the mean of the ranks' means
            stats["aux"] = stats.get("aux", 0.0) + float(aux_mean.detach())
            loss = loss + a.aux_weight * aux_mean
        opt.zero_grad(set_to_none=True)
        if aux and a.aux_text_only:
            # The answers' gradient everywhere, then the auxiliary loss's for the text side only (the
            # backward pass stops where the visual embeddings enter: no text parameter lies beyond them).
            answer_loss.backward(retain_graph=True)
            text_params = list(model.model.language_model.parameters()) + list(aux_head.parameters())
            grads = torch.autograd.grad(a.aux_weight * aux_mean, text_params, allow_unused=True)
            for p_, g_ in zip(text_params, grads):
                if g_ is not None:
                    p_.grad = g_ if p_.grad is None else p_.grad + g_
        else:
            loss.backward()
        if world > 1:
            all_reduce_grads([p for g in opt.param_groups for p in g["params"] if p.requires_grad])
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        stats["loss"] += float(answer_loss.detach()); stats["n"] += 1  # the answer loss, without aux
        for t, e in zip(templates, exact):
            acc.setdefault(t, []).append(int(e))
        if (step + 1) % a.log_every == 0:
            if world > 1:  # the whole batches' figures for the log
                stats, acc = gathered_stats(stats, acc)
            accs = " ".join(f"{t}={np.mean(v):.2f}" for t, v in sorted(acc.items()))
            if a.zoom_data:
                accs += f" | zoomed {n_zoomed}/{a.log_every * a.batch}"
                n_zoomed = 0
            aux_txt = f" aux {stats['aux'] / stats['n']:.4f}" if "aux" in stats else ""
            aux_txt += f" col {stats['col'] / stats['n']:.4f}" if "col" in stats else ""
            print(f"step {step + 1} loss {stats['loss'] / stats['n']:.4f}{aux_txt} lr {lr_at(step):.2e} "
                  f"{time.time() - t0:.0f}s cpu {time.process_time() - c0:.0f}s files {len(files)} | {accs}", flush=True)
            stats = {"loss": 0.0, "n": 0}
            acc = {}
        out_of_time = (a.max_minutes and time.time() - t0 > 60 * a.max_minutes) or step + 1 == a.stop_at \
            or (a.max_cpu_minutes and time.process_time() - c0 > 60 * a.max_cpu_minutes)
        if rank == 0 and ((step + 1) % a.save_every == 0 or step + 1 == a.steps or out_of_time):
            save(model, remap, a.out, step + 1, a.override)
        if out_of_time:
            print(f"stopped at step {step + 1} (--stop-at / --max-minutes / --max-cpu-minutes)", flush=True)
            break
    print(f"done {step + 1} steps in {time.time() - t0:.0f}s", flush=True)


def save(model, remap: Remap, out: Path, step: int, overrides: list[str]) -> None:
    """The checkpoint, with the model_config overrides it was trained with (export.py applies them)."""
    tmp = out.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "used": remap.used, "step": step, "overrides": overrides}, tmp)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
