#!/usr/bin/env python3
"""transformers' greedy answers on the held-out set: the committed fixture tests/eval/hf_answers.tsv.

  hf_answers.py [--hf tools/train/out/hf-stored] [--only-first N]

Runs the checkpoint export.py saved (the shipped GGUF weights exactly as stored, dequantized) on every
question of tests/eval/questions.tsv with Reel's prompt and media handling: images as decoded by
Pillow, videos decoded by the ffmpeg CLI and sampled by the reference video processor at its
default 2 fps ("fps2") and as 8 evenly spaced frames ("frames8", Reel's --frames 8). Greedy
decoding, at most MAX_NEW tokens, until <|im_end|>. Per answer it records the smallest top-1 minus
top-2 logit margin over the generated tokens (a small margin explains a Reel / transformers
difference by rounding, not by a bug).

The prompt prefix (<|im_start|>user\\n + media) runs once per file and sampling through the
transformers text model; each question continues from a copy of that KV cache. The first questions are
also answered by model.generate() on the processor's full inputs and must agree (a check that
the shortcut is transformers' greedy decoding).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import model_config as mc  # noqa: E402
import qwen_inputs as qi  # noqa: E402
import shapes_world as sw  # noqa: E402

EVAL_DIR = ROOT / "tests/eval"
MAX_NEW = 40
N_GENERATE_CHECK = 6


def read_questions() -> list[dict]:
    lines = (EVAL_DIR / "questions.tsv").read_text().splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, ln.split("\t"))) for ln in lines[1:]]


def order_rows(rows: list[dict]) -> list[dict]:
    """--order-questions: in place of the held-out questions, train.py's training-only left/right
    questions for every held-out scene of 2-3 objects (from its description's order): leftmost,
    rightmost, and every ordered pair."""
    import train
    out = []
    for r in rows:
        names = train.order_names(r["answer"]) if r["template"] == "describe" else []
        if len(names) < 2:
            continue
        ends, pairs = train.order_qa(names)
        templates = ["leftmost", "rightmost"] + ["pair"] * len(pairs)
        out += [{"name": r["name"], "kind": r["kind"], "template": t, "question": q, "answer": a}
                for t, (q, a) in zip(templates, ends + pairs)]
    return out


@torch.no_grad()
def prefix_cache(model, kind: str, pv: np.ndarray, grid: np.ndarray, media_ids: np.ndarray):
    from transformers import DynamicCache
    inner = model.model
    lm = inner.language_model
    pv_t = torch.from_numpy(pv)
    grid_t = torch.from_numpy(grid.astype(np.int64))[None]
    vis = inner.get_image_features(pv_t, grid_t, return_dict=True)
    embeds = torch.cat(vis.pooler_output, 0)
    deep = [torch.cat(f, 0) for f in vis.deepstack_features]
    ids = torch.tensor([list(qi.tokens(qi.HEAD)) + [int(t) for t in media_ids]])
    pad = mc.IMAGE_PAD if kind == "image" else mc.VIDEO_PAD
    tt = (ids == pad).long() * (1 if kind == "image" else 2)
    pos, _ = inner.get_rope_index(ids, tt, image_grid_thw=grid_t if kind == "image" else None,
                                  video_grid_thw=grid_t if kind == "video" else None)
    x = lm.embed_tokens(ids)
    vmask = ids == pad
    x = x.masked_scatter(vmask[..., None], embeds)
    cache = DynamicCache(config=lm.config)
    lm(inputs_embeds=x, position_ids=pos, past_key_values=cache, use_cache=True,
       visual_pos_masks=vmask, deepstack_visual_embeds=deep)
    return cache, int(pos.max()) + 1


@torch.no_grad()
def greedy(model, cache, start: int, question: str) -> tuple[list[int], float]:
    lm = model.model.language_model
    emb = lm.embed_tokens.weight
    ids = list(qi.tokens(question)) + list(qi.tokens(qi.TAIL))
    pos = start
    out, margin = [], float("inf")
    for _ in range(MAX_NEW):
        t = torch.tensor([ids])
        p = (torch.arange(len(ids)) + pos).view(1, 1, -1).expand(3, 1, -1)
        h = lm(inputs_embeds=lm.embed_tokens(t), position_ids=p, past_key_values=cache,
               use_cache=True).last_hidden_state[0, -1]
        logits = emb @ h
        top = torch.topk(logits, 2)
        margin = min(margin, float(top.values[0] - top.values[1]))
        nxt = int(top.indices[0])
        pos += len(ids)
        if nxt == qi.processor().tokenizer.convert_tokens_to_ids("<|im_end|>"):
            break
        out.append(nxt)
        ids = [nxt]
    return out, margin


@torch.no_grad()
def generate_check(model, kind: str, media, fps, sampling: str, question: str) -> list[int]:
    import PIL.Image
    proc = qi.processor()
    text = qi.prompt_text(kind, question)
    if kind == "image":
        inp = proc(text=[text], images=[PIL.Image.fromarray(media)], return_tensors="pt")
    else:
        inp = proc(text=[text], videos=[media], video_metadata=[{"fps": fps, "total_num_frames": len(media)}],
                   return_tensors="pt", **qi.SAMPLINGS[sampling])
    inp.pop("video_metadata", None)
    n = inp["input_ids"].shape[1]
    g = model.generate(**inp, do_sample=False, max_new_tokens=MAX_NEW,
                       eos_token_id=proc.tokenizer.convert_tokens_to_ids("<|im_end|>"))
    ids = g[0, n:].tolist()
    end = proc.tokenizer.convert_tokens_to_ids("<|im_end|>")
    return ids[:ids.index(end)] if end in ids else ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf", type=Path, default=HERE / "out/hf-stored")
    ap.add_argument("--out", type=Path, default=EVAL_DIR / "hf_answers.tsv")
    ap.add_argument("--only-first", type=int, default=0)
    ap.add_argument("--order-questions", action="store_true",
                    help="ask train.py's left/right questions (order_rows) instead of the held-out ones")
    a = ap.parse_args()
    from transformers import Qwen3VLForConditionalGeneration
    torch.set_num_threads(1)
    model = Qwen3VLForConditionalGeneration.from_pretrained(a.hf, attn_implementation="eager",
                                                            dtype=torch.float32)
    model.eval()
    tok = qi.processor().tokenizer
    rows = read_questions()
    if a.order_questions:
        rows = order_rows(rows)
    if a.only_first:
        rows = rows[:a.only_first]
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(r["name"], []).append(r)
    out = ["name\tsampling\tquestion\tanswer\tmin_margin"]
    t0, checked, n_ok = time.time(), 0, {}
    for name, qs in by_file.items():
        kind = qs[0]["kind"]
        path = EVAL_DIR / "data" / name
        if kind == "image":
            media, fps = sw.load_image(path), None
            samplings = ["img"]
        else:
            media, fps = sw.decode_video(path)
            samplings = list(qi.SAMPLINGS)
        for s in samplings:
            pv, grid, mids = qi.media_inputs(kind, media, fps, "fps2" if s == "img" else s)
            cache, start = prefix_cache(model, kind, pv, grid, mids)
            for r in qs:
                ids, margin = greedy(model, copy.deepcopy(cache), start, r["question"])
                if checked < N_GENERATE_CHECK:
                    want = generate_check(model, kind, media, fps, "fps2" if s == "img" else s, r["question"])
                    assert want == ids, (name, s, r["question"], want, ids)
                    checked += 1
                answer = tok.decode(ids)
                assert "\t" not in answer and "\n" not in answer, answer
                out.append(f"{name}\t{s}\t{r['question']}\t{answer}\t{margin:.4f}")
                ok = answer.strip().rstrip(".").lower() == r["answer"].strip().rstrip(".").lower()
                n_ok.setdefault((s if s != "img" else "image", r["template"]), []).append(ok)
        print(f"{name} {time.time() - t0:.0f}s", flush=True)
    a.out.write_text("\n".join(out) + "\n")
    print(f"wrote {a.out} ({len(out) - 1} answers); generate() agreed on {checked}")
    for k, v in sorted(n_ok.items()):
        print(f"  {k[0]:8s} {k[1]:9s} {np.mean(v) * 100:5.1f}% of {len(v)}")


if __name__ == "__main__":
    main()
