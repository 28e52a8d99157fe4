#!/usr/bin/env python3
"""Cross-check the committed fixtures with an independent float64 numpy forward written from the
spec (sections 6.2, 6.4, 9.2): reads each tests/fixtures/models/NAME.gguf.xz with GGUFReader,
decodes every tensor, runs the Qwen3 text decoder (text-only positions, so M-RoPE = NeoX RoPE)
and compares with tests/fixtures/reference/NAME.json[.xz].

  python tools/reference/check_fixtures.py [NAME ...]
"""

from __future__ import annotations

import json
import lzma
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402

import gguf_export as ge  # noqa: E402


def load_ref(name: str) -> dict:
    p = ROOT / "tests/fixtures/reference" / f"{name}.json"
    if p.exists():
        return json.loads(p.read_text())
    return json.loads(lzma.decompress((p.parent / f"{name}.json.xz").read_bytes()))


def forward(W: dict, hp: dict, ids: list[int]) -> np.ndarray:
    L, H, KV, hd, eps, theta = (hp[k] for k in ("L", "H", "KV", "hd", "eps", "theta"))
    n = len(ids)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    inv = theta ** (-np.arange(0, hd, 2) / hd)
    ang = np.arange(n)[:, None] * inv[None]
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]

    def rope(q):
        rot = np.concatenate([-q[..., hd // 2:], q[..., :hd // 2]], -1)
        return q * cos + rot * sin

    x = W["token_embd.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(L):
        p = f"blk.{l}."
        a = rms(x, W[p + "attn_norm.weight"])
        q = rope(rms((a @ W[p + "attn_q.weight"].T).reshape(n, H, hd), W[p + "attn_q_norm.weight"]))
        k = rope(rms((a @ W[p + "attn_k.weight"].T).reshape(n, KV, hd), W[p + "attn_k_norm.weight"]))
        v = (a @ W[p + "attn_v.weight"].T).reshape(n, KV, hd)
        o = np.zeros((n, H, hd))
        for h in range(H):
            s = q[:, h] @ k[:, h // (H // KV)].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            o[:, h] = (s / s.sum(-1, keepdims=True)) @ v[:, h // (H // KV)]
        x = x + o.reshape(n, H * hd) @ W[p + "attn_output.weight"].T
        m = rms(x, W[p + "ffn_norm.weight"])
        g, u = m @ W[p + "ffn_gate.weight"].T, m @ W[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
    x = rms(x, W["output_norm.weight"])
    return x @ W.get("output.weight", W["token_embd.weight"]).T


def check(name: str) -> bool:
    with tempfile.NamedTemporaryFile(suffix=".gguf") as tmp:
        tmp.write(lzma.decompress((ROOT / "tests/fixtures/models" / f"{name}.gguf.xz").read_bytes()))
        tmp.flush()
        r = gguf.GGUFReader(tmp.name)
        W = {t.name: ge.decode(t.data, t.tensor_type).astype(np.float64)
                     .reshape([int(d) for d in reversed(t.shape)]) for t in r.tensors}
        f = lambda k: r.fields[k].contents()  # noqa: E731
        hp = dict(L=f("qwen3vl.block_count"), H=f("qwen3vl.attention.head_count"),
                  KV=f("qwen3vl.attention.head_count_kv"), hd=f("qwen3vl.attention.key_length"),
                  eps=f("qwen3vl.attention.layer_norm_rms_epsilon"), theta=f("qwen3vl.rope.freq_base"))
        types = {t.name: t.tensor_type.name for t in r.tensors}
    ref = load_ref(name)
    ok = types == ref["tensor_types"]
    cols = np.array(ref["columns"])
    worst = 0.0
    for case in ref["cases"]:
        lg = forward(W, hp, case["ids"])
        worst = max(worst, float(np.abs(lg[:, cols] - np.array(case["logits"])).max()))
        for i, st in enumerate(case["stats"]):
            row = lg[i]
            lse = row.max() + np.log(np.exp(row - row.max()).sum())
            ok &= abs(lse - st["lse"]) < 1e-4 and abs(row.mean() - st["mean"]) < 1e-5
            if st["top2_gap"] > 1e-4:
                ok &= int(row.argmax()) == st["argmax"]
    ok &= worst < 1e-4
    print(f"{name}: {'ok' if ok else 'MISMATCH'} (max |numpy - HF| over stored logits {worst:.1e})")
    return ok


def main() -> None:
    names = sys.argv[1:] or sorted(p.name[:-len(".gguf.xz")] for p in (ROOT / "tests/fixtures/models").glob("*.gguf.xz")
                                   if "mmproj" not in p.name)
    sys.exit(0 if all([check(n) for n in names]) else 1)


if __name__ == "__main__":
    main()
