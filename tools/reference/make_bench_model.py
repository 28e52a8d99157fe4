#!/usr/bin/env python3
"""Write a Qwen3-VL-2B-shaped GGUF with random weights, for benchmarks (never committed).

  python tools/reference/make_bench_model.py --shape 2b --type q8_0   --out models/bench/2b-q8_0.gguf
  python tools/reference/make_bench_model.py --shape 2b --type q4_k_m --out models/bench/2b-q4_k_m.gguf
  python tools/reference/make_bench_model.py --shape 2b --mmproj      --out models/bench/2b-mmproj-f16.gguf

Text file: the real 2B shapes, keys and tokenizer of spec sections 1 / 9.2 (28 layers, hidden 2048,
16/8 heads of 128, SwiGLU 6144, tied embeddings, vocab 151936), tensor types as the converter
(q8_0) or llama-quantize Q4_K_M would choose them (see gguf_export.text_tensor_type).
mmproj (--mmproj): the 2B vision tower + mergers as an F16 clip GGUF (spec 9.3).

The blocks are random bytes with sane, finite fp16 scales (weights of std ~0.02), generated
directly in numpy and streamed to disk tensor by tensor: the logits are meaningless, but every
block is valid and no value is NaN/Inf. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402

import gguf_export as ge  # noqa: E402

T = gguf.GGMLQuantizationType

SHAPES = {
    "2b": dict(n_layer=28, n_embd=2048, n_ff=6144, n_head=16, n_head_kv=8, head_dim=128, tied=True,
               vision=dict(depth=24, hidden_size=1024, num_heads=16, intermediate_size=4096,
                           patch_size=16, spatial_merge_size=2, num_position_embeddings=2304,
                           deepstack_visual_indexes=[5, 11, 17], out_hidden_size=2048)),
}


def _f16_bytes(vals: np.ndarray) -> np.ndarray:
    return vals.astype(np.float16).view(np.uint8).reshape(-1, 2)


def random_blocks(rng: np.random.Generator, t: T, n_elems: int) -> np.ndarray:
    """Random valid blocks of type t holding n_elems values (weights of std about 0.02)."""
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    nb = n_elems // bs
    if t == T.F32:
        return (rng.standard_normal(n_elems, dtype=np.float32) * 0.02)
    if t == T.F16:
        return (rng.standard_normal(n_elems, dtype=np.float32) * 0.02).astype(np.float16)
    raw = np.frombuffer(rng.bytes(nb * ts), dtype=np.uint8).reshape(nb, ts).copy()
    jitter = rng.uniform(0.75, 1.25, nb).astype(np.float32)
    if t == T.Q8_0:       # fp16 d, int8 q[32]; uniform int8 std ~74
        raw[:, 0:2] = _f16_bytes(2.7e-4 * jitter)
    elif t == T.Q4_K:     # fp16 d, fp16 dmin, scales[12], qs[128]
        raw[:, 0:2] = _f16_bytes(1.4e-4 * jitter)
        raw[:, 2:4] = _f16_bytes(1.4e-4 * jitter)
    elif t == T.Q6_K:     # ql[128], qh[64], int8 scales[16], fp16 d
        sc = rng.integers(2, 21, (nb, 16), dtype=np.int8) * rng.choice(np.array([-1, 1], np.int8), (nb, 16))
        raw[:, 192:208] = sc.view(np.uint8)
        raw[:, 208:210] = _f16_bytes(1.0e-4 * jitter)
    elif t == T.Q5_0:     # fp16 d, qh[4], qs[16]
        raw[:, 0:2] = _f16_bytes(1.3e-3 * jitter)
    else:
        raise ValueError(t)
    return raw


def text_plan(sh: dict, ftype: str):
    """[(gguf name, PyTorch shape, type)] in converter order."""
    L, D, F, H, KV, hd = (sh[k] for k in ("n_layer", "n_embd", "n_ff", "n_head", "n_head_kv", "head_dim"))
    items = [("token_embd.weight", (151936, D))]
    for i in range(L):
        p = f"blk.{i}."
        items += [(p + "attn_norm.weight", (D,)), (p + "attn_q.weight", (H * hd, D)),
                  (p + "attn_k.weight", (KV * hd, D)), (p + "attn_v.weight", (KV * hd, D)),
                  (p + "attn_output.weight", (D, H * hd)), (p + "attn_q_norm.weight", (hd,)),
                  (p + "attn_k_norm.weight", (hd,)), (p + "ffn_norm.weight", (D,)),
                  (p + "ffn_gate.weight", (F, D)), (p + "ffn_up.weight", (F, D)),
                  (p + "ffn_down.weight", (D, F))]
    items.append(("output_norm.weight", (D,)))
    if not sh["tied"]:
        items.append(("output.weight", (151936, D)))
    return [(n, s, ge.text_tensor_type(n, s[-1], len(s), ftype, L, sh["tied"])) for n, s in items]


def mmproj_plan(v: dict):
    Dv, F, M = v["hidden_size"], v["intermediate_size"], v["hidden_size"] * 4
    P, out = v["patch_size"], v["out_hidden_size"]
    items = [("v.patch_embd.weight", (Dv, 3, P, P)), ("v.patch_embd.weight.1", (Dv, 3, P, P)),
             ("v.patch_embd.bias", (Dv,)), ("v.position_embd.weight", (v["num_position_embeddings"], Dv))]
    for i in range(v["depth"]):
        p = f"v.blk.{i}."
        items += [(p + "ln1.weight", (Dv,)), (p + "ln1.bias", (Dv,)),
                  (p + "ln2.weight", (Dv,)), (p + "ln2.bias", (Dv,)),
                  (p + "attn_qkv.weight", (3 * Dv, Dv)), (p + "attn_qkv.bias", (3 * Dv,)),
                  (p + "attn_out.weight", (Dv, Dv)), (p + "attn_out.bias", (Dv,)),
                  (p + "ffn_up.weight", (F, Dv)), (p + "ffn_up.bias", (F,)),
                  (p + "ffn_down.weight", (Dv, F)), (p + "ffn_down.bias", (Dv,))]
    items += [("v.post_ln.weight", (Dv,)), ("v.post_ln.bias", (Dv,)),
              ("mm.0.weight", (M, M)), ("mm.0.bias", (M,)), ("mm.2.weight", (out, M)), ("mm.2.bias", (out,))]
    for L in v["deepstack_visual_indexes"]:
        p = f"v.deepstack.{L}."
        items += [(p + "norm.weight", (M,)), (p + "norm.bias", (M,)), (p + "fc1.weight", (M, M)),
                  (p + "fc1.bias", (M,)), (p + "fc2.weight", (out, M)), (p + "fc2.bias", (out,))]
    return [(n, s, ge.mmproj_tensor_type(n, len(s), s[-1], "f16")) for n, s in items]


def tensor_data(rng, name: str, shape, t: T) -> np.ndarray:
    n = int(np.prod(shape))
    if len(shape) == 1 and t == T.F32:
        if name.endswith(".bias"):
            return (rng.standard_normal(n, dtype=np.float32) * 0.02)
        return (1.0 + rng.standard_normal(n, dtype=np.float32) * 0.05)   # norm weights
    arr = random_blocks(rng, t, n)
    if t in (T.F32, T.F16):
        return arr.reshape(shape)
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    return arr.reshape(*shape[:-1], shape[-1] // bs * ts)


def write(out: Path, arch: str, kv, plan, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(out), arch=arch)
    kv(w)
    for name, shape, t in plan:
        bs, ts = gguf.GGML_QUANT_SIZES[t]
        nbytes = int(np.prod(shape)) // bs * ts
        if t in (T.F32, T.F16):
            w.add_tensor_info(name, shape, np.dtype(np.float32 if t == T.F32 else np.float16), nbytes)
        else:  # byte shape; the writer converts it back to the element shape
            w.add_tensor_info(name, (*shape[:-1], shape[-1] // bs * ts), np.dtype(np.uint8), nbytes, raw_dtype=t)
    w.write_header_to_file(path=out)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, t in plan:
        w.write_tensor_data(tensor_data(rng, name, shape, t))
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="2b", choices=list(SHAPES))
    ap.add_argument("--type", default="q8_0", choices=["f16", "q8_0", "q4_k_m"])
    ap.add_argument("--mmproj", action="store_true", help="write the mmproj (F16) instead of the text model")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sh = SHAPES[args.shape]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.mmproj:
        v = sh["vision"]

        def kv(w):
            w.add_type(gguf.GGUFType.MMPROJ)
            w.add_name(f"Qwen3-VL {args.shape} random mmproj")
            w.add_file_type(ge.FILE_TYPES["f16"])
            w.add_clip_has_vision_encoder(True)
            w.add_vision_projection_dim(sh["n_embd"])
            w.add_vision_image_size(int(v["num_position_embeddings"] ** 0.5 * v["patch_size"]))
            w.add_vision_patch_size(v["patch_size"])
            w.add_vision_embedding_length(v["hidden_size"])
            w.add_vision_feed_forward_length(v["intermediate_size"])
            w.add_vision_block_count(v["depth"])
            w.add_vision_head_count(v["num_heads"])
            w.add_vision_image_mean([0.5, 0.5, 0.5])
            w.add_vision_image_std([0.5, 0.5, 0.5])
            w.add_clip_projector_type(gguf.VisionProjectorType.QWEN3VL)
            w.add_vision_use_gelu(True)
            w.add_vision_spatial_merge_size(v["spatial_merge_size"])
            w.add_vision_attention_layernorm_eps(1e-6)
            w.add_vision_is_deepstack_layers([i in v["deepstack_visual_indexes"] for i in range(v["depth"])])
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)

        write(args.out, "clip", kv, mmproj_plan(v), args.seed)
    else:
        import qwen3vl_vocab
        hp = ge.TextHParams(n_layer=sh["n_layer"], n_embd=sh["n_embd"], n_ff=sh["n_ff"], n_head=sh["n_head"],
                            n_head_kv=sh["n_head_kv"], head_dim=sh["head_dim"], rms_eps=1e-6,
                            rope_theta=5e6, mrope_section=[24, 20, 20], n_deepstack=3,
                            name=f"Qwen3-VL {args.shape} random")

        def kv(w):
            ge.write_text_kv(w, hp, args.type, qwen3vl_vocab.write_vocab_kv)

        write(args.out, "qwen3vl", kv, text_plan(sh, args.type), args.seed)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e9:.2f} GB) in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
