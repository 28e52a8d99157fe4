#!/usr/bin/env python3
"""Write Qwen3-VL-2B- and Qwen3.5-0.8B/2B-shaped GGUFs with random weights, for benchmarks
(never committed).

  python tools/reference/make_bench_model.py --shape 2b --type q8_0   --out models/bench/2b-q8_0.gguf
  python tools/reference/make_bench_model.py --shape 2b --type q4_k_m --out models/bench/2b-q4_k_m.gguf
  python tools/reference/make_bench_model.py --shape 2b --mmproj      --out models/bench/2b-mmproj-f16.gguf

Text file: the real 2B shapes, keys and tokenizer of spec sections 1 / 9.2 (28 layers, hidden 2048,
16/8 heads of 128, SwiGLU 6144, tied embeddings, vocab 151936), tensor types as the converter
(q8_0) or llama-quantize Q4_K_M would choose them (see gguf_export.text_tensor_type).
mmproj (--mmproj): the 2B vision tower + mergers as an F16 clip GGUF (spec 9.3).

Qwen3.5 (--shape q35-0.8b / q35-2b, text only, arch "qwen35" in llama.cpp's converter layout as
gguf_export.write_qwen35_kv writes it): the shapes of the official Qwen/Qwen3.5-0.8B and
Qwen3.5-2B config.json text_config (as published copies of those configs give them, e.g. test
fixtures in public Qwen3.5 ports): 24 layers, every 4th full attention (full_attention_interval
4: 18 Gated DeltaNet + 6 gated attention), hidden 1024 / 2048, SwiGLU 3584 / 6144, 8 query and
2 KV heads of 256 (rotary on a quarter: 64 dims, mrope_section [11, 11, 10], theta 1e7),
DeltaNet 16 key and 16 value heads of 128, conv kernel 4, tied embeddings, 248320 embedding
rows. The vocabulary written is Qwen3-VL's padded with unused tokens to 248320 (the real 248k
one is not to be had offline), which changes no shape the benchmark reads. The MTP head is not
written.

  python tools/reference/make_bench_model.py --shape q35-0.8b --type q8_0 --out models/bench/q35-0.8b-q8_0.gguf
  python tools/reference/make_bench_model.py --shape q35-2b   --type q8_0 --out models/bench/q35-2b-q8_0.gguf

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

# Qwen3.5 text shapes (see the docstring for where they come from).
Q35_SHAPES = {
    "q35-0.8b": dict(n_layer=24, n_embd=1024, n_ff=3584),
    "q35-2b": dict(n_layer=24, n_embd=2048, n_ff=6144),
}
Q35_COMMON = dict(n_head=8, n_head_kv=2, head_dim=256, rope_dim=64, mrope_section=[11, 11, 10],
                  rope_theta=1e7, conv_kernel=4, k_head_dim=128, n_k_heads=16, n_v_heads=16,
                  v_head_dim=128, full_attention_interval=4, n_vocab=248320)


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


def q35_plan(sh: dict, ftype: str):
    """[(gguf name, PyTorch shape, type)] as the converter writes a Qwen3.5 text model (tied)."""
    c = {**Q35_COMMON, **sh}
    L, D, F, hd = c["n_layer"], c["n_embd"], c["n_ff"], c["head_dim"]
    H, KV = c["n_head"], c["n_head_kv"]
    key_w, value_w = c["n_k_heads"] * c["k_head_dim"], c["n_v_heads"] * c["v_head_dim"]
    channels = 2 * key_w + value_w
    items = [("token_embd.weight", (c["n_vocab"], D))]
    for i in range(L):
        p = f"blk.{i}."
        items += [(p + "attn_norm.weight", (D,)), (p + "post_attention_norm.weight", (D,))]
        if (i + 1) % c["full_attention_interval"] == 0:
            items += [(p + "attn_q.weight", (2 * H * hd, D)), (p + "attn_k.weight", (KV * hd, D)),
                      (p + "attn_v.weight", (KV * hd, D)), (p + "attn_output.weight", (D, H * hd)),
                      (p + "attn_q_norm.weight", (hd,)), (p + "attn_k_norm.weight", (hd,))]
        else:
            items += [(p + "attn_qkv.weight", (channels, D)), (p + "attn_gate.weight", (value_w, D)),
                      (p + "ssm_beta.weight", (c["n_v_heads"], D)),
                      (p + "ssm_alpha.weight", (c["n_v_heads"], D)),
                      (p + "ssm_out.weight", (D, value_w)),
                      (p + "ssm_conv1d.weight", (channels, c["conv_kernel"])),
                      (p + "ssm_dt.bias", (c["n_v_heads"],)), (p + "ssm_a", (c["n_v_heads"],)),
                      (p + "ssm_norm.weight", (c["v_head_dim"],))]
        items += [(p + "ffn_gate.weight", (F, D)), (p + "ffn_up.weight", (F, D)),
                  (p + "ffn_down.weight", (D, F))]
    items.append(("output_norm.weight", (D,)))
    return [(n, s, ge.qwen35_tensor_type(n, s[-1], len(s), ftype)) for n, s in items]


def q35_tensor_data(rng, name: str, shape, t: T) -> np.ndarray:
    """As tensor_data, with the recurrent layers' parameters in their working ranges: ssm_a
    (-exp(A_log)) negative, small decays; the conv taps of std ~0.3 (a 4-tap filter)."""
    n = int(np.prod(shape))
    if name.endswith(".ssm_a"):
        return -np.exp(rng.uniform(-2.0, 0.5, n).astype(np.float32))
    if name.endswith(".ssm_dt.bias"):
        return rng.uniform(-1.0, 1.0, n).astype(np.float32)
    if name.endswith(".ssm_conv1d.weight"):
        return (rng.standard_normal(n, dtype=np.float32) * 0.3).reshape(shape)
    return tensor_data(rng, name, shape, t)


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


def write(out: Path, arch: str, kv, plan, seed: int, data=None) -> None:
    data = data or tensor_data
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
        w.write_tensor_data(data(rng, name, shape, t))
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="2b", choices=list(SHAPES) + list(Q35_SHAPES))
    ap.add_argument("--type", default="q8_0", choices=["f16", "q8_0", "q4_k_m"])
    ap.add_argument("--mmproj", action="store_true", help="write the mmproj (F16) instead of the text model")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.shape in Q35_SHAPES:
        write_q35(args)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e9:.2f} GB) in {time.time() - t0:.0f}s")
        return
    sh = SHAPES[args.shape]
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


def write_q35(args) -> None:
    if args.mmproj or args.type == "q4_k_m":
        raise SystemExit("Qwen3.5 bench models: text only, f16 or q8_0 (the converter's types)")
    import qwen3vl_vocab
    c = {**Q35_COMMON, **Q35_SHAPES[args.shape]}
    hp = ge.Qwen35HParams(
        n_layer=c["n_layer"], n_embd=c["n_embd"], n_ff=c["n_ff"], n_head=c["n_head"],
        n_head_kv=c["n_head_kv"], head_dim=c["head_dim"], rms_eps=1e-6, rope_theta=c["rope_theta"],
        rope_dim=c["rope_dim"], mrope_section=c["mrope_section"], conv_kernel=c["conv_kernel"],
        k_head_dim=c["k_head_dim"], n_k_heads=c["n_k_heads"], n_v_heads=c["n_v_heads"],
        v_head_dim=c["v_head_dim"], full_attention_interval=c["full_attention_interval"],
        name=f"Qwen3.5 {args.shape[4:]} random")

    def vocab_kv(w):
        # Qwen3-VL's vocabulary padded with unused tokens to the 248320 embedding rows, as the
        # real file's list covers its rows: a sampled id then always has a token to decode.
        tokens, types, merges = qwen3vl_vocab.vocab()
        pad = range(len(tokens), c["n_vocab"])
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(tokens + [f"[PAD{i}]" for i in pad])
        w.add_token_types(types + [qwen3vl_vocab.TOKEN_UNUSED] * len(pad))
        w.add_token_merges(merges)
        w.add_eos_token_id(qwen3vl_vocab.EOS_ID)
        w.add_pad_token_id(qwen3vl_vocab.PAD_ID)
        w.add_bos_token_id(qwen3vl_vocab.BOS_ID)
        w.add_add_bos_token(False)

    def kv(w):
        ge.write_qwen35_kv(w, hp, args.type, vocab_kv)

    write(args.out, "qwen35", kv, q35_plan(Q35_SHAPES[args.shape], args.type), args.seed,
          q35_tensor_data)


if __name__ == "__main__":
    main()
