"""Numpy encoders for the ggml block formats that gguf 0.19's `gguf.quants.quantize` lacks.

Q4_K and Q6_K (spec section 9.4). These are simple, valid encodings (one pass, round to
nearest), not llama-quantize's error-minimising search: the engine only has to decode what is
in the file, and the reference logits are computed from the *decoded* weights. Every encoder
is checked by round-tripping through `gguf.quants.dequantize` (see `selftest`).

All functions take a float32 array whose last dimension is a multiple of 256 and return the
uint8 byte array gguf's writer expects (last dimension = bytes per row).
"""

from __future__ import annotations

import numpy as np

QK_K = 256


def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b != 0, a / np.where(b != 0, b, 1), 0)
    return out


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Q4_K: 256 elements -> 144 bytes: fp16 d, fp16 dmin, u8 scales[12], u8 qs[128].
    x = d*sc_j*q - dmin*m_j, q in 0..15, sc_j and m_j 6-bit, j = 32-element sub-block."""
    x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    assert shape[-1] % QK_K == 0
    b = x.reshape(-1, 8, 32)                       # blocks, sub-blocks, elements
    n = b.shape[0]
    mn = np.minimum(b.min(axis=2), 0.0)            # <= 0
    mx = b.max(axis=2)
    scale = (mx - mn) / 15.0                       # >= 0
    neg_min = -mn                                  # >= 0
    d = _f16(scale.max(axis=1) / 63.0)
    dmin = _f16(neg_min.max(axis=1) / 63.0)
    d32 = d.astype(np.float32)[:, None]
    dmin32 = dmin.astype(np.float32)[:, None]
    sc = np.clip(np.round(_safe_div(scale, d32)), 0, 63).astype(np.uint8)
    m = np.clip(np.round(_safe_div(neg_min, dmin32)), 0, 63).astype(np.uint8)
    # a sub-block with a non-zero range but sc rounded to 0 would lose everything; bump it
    sc = np.where((sc == 0) & (scale > 0) & (d32 > 0), 1, sc).astype(np.uint8)
    step = d32 * sc.astype(np.float32)             # [n, 8]
    off = dmin32 * m.astype(np.float32)            # [n, 8]
    q = np.clip(np.round(_safe_div(b + off[:, :, None], step[:, :, None])), 0, 15).astype(np.uint8)

    scales = np.zeros((n, 12), dtype=np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)

    qf = q.reshape(n, 4, 2, 32)                     # chunk c: sub-blocks 2c (low), 2c+1 (high)
    qs = (qf[:, :, 0, :] | (qf[:, :, 1, :] << 4)).reshape(n, 128)

    out = np.concatenate([
        d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8), scales, qs], axis=1)
    assert out.shape[1] == 144
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 144)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Q6_K: 256 elements -> 210 bytes: u8 ql[128], u8 qh[64], i8 scales[16], fp16 d.
    x = d*sc_j*(q-32), q in 0..63, sc_j int8, j = 16-element sub-block."""
    x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    assert shape[-1] % QK_K == 0
    b = x.reshape(-1, 16, 16)
    n = b.shape[0]
    amax_idx = np.abs(b).argmax(axis=2)
    vmax = np.take_along_axis(b, amax_idx[:, :, None], axis=2)[:, :, 0]   # signed extreme
    # map the signed extreme to -32 (like ggml's make_qx_quants), giving full range use
    scale = vmax / -32.0
    amax_scale = np.abs(scale).max(axis=1)
    d = _f16(amax_scale / 127.0)
    d32 = d.astype(np.float32)[:, None]
    sc = np.clip(np.round(_safe_div(scale, d32)), -128, 127).astype(np.int8)
    step = d32 * sc.astype(np.float32)
    q = np.clip(np.round(_safe_div(b, step[:, :, None])), -32, 31).astype(np.int16) + 32
    q = q.astype(np.uint8).reshape(n, 2, 4, 32)     # half h, quarter k (elements 32k..32k+31)
    q1, q2, q3, q4 = q[:, :, 0], q[:, :, 1], q[:, :, 2], q[:, :, 3]
    ql = np.concatenate([(q1 & 15) | ((q3 & 15) << 4), (q2 & 15) | ((q4 & 15) << 4)], axis=2)
    qh = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    out = np.concatenate([
        ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8).reshape(n, 16),
        d.reshape(n, 1).view(np.uint8)], axis=1)
    assert out.shape[1] == 210
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 210)


def quantize(x: np.ndarray, qtype) -> np.ndarray:
    """gguf.quants.quantize, with Q4_K/Q6_K filled in from this module."""
    import gguf
    T = gguf.GGMLQuantizationType
    if qtype == T.Q4_K:
        return quantize_q4_k(x)
    if qtype == T.Q6_K:
        return quantize_q6_k(x)
    return gguf.quants.quantize(np.asarray(x, dtype=np.float32), qtype)


def selftest(seed: int = 0) -> None:
    import gguf
    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((8, 512)) * rng.uniform(0.01, 3, (8, 1))).astype(np.float32)
    x[0, :256] = 0.0                       # an all-zero block
    x[1, :] = np.abs(x[1, :])              # all-positive rows
    x[2, :] = -np.abs(x[2, :])             # all-negative rows
    for t, tol in ((T.Q4_K, 0.13), (T.Q6_K, 0.035)):
        raw = quantize(x, t)
        y = gguf.quants.dequantize(raw, t)
        assert y.shape == x.shape, (t, y.shape)
        assert np.all(np.isfinite(y))
        rel = np.abs(y - x).max(axis=1) / (np.abs(x).max(axis=1) + 1e-30)
        assert rel.max() < tol, (t.name, rel)
        # encoding is idempotent on its own output up to fp16 scale rounding
        y2 = gguf.quants.dequantize(quantize(y, t), t)
        assert np.abs(y2 - y).max() <= np.abs(y).max() * tol
    print("kquants selftest ok")


if __name__ == "__main__":
    selftest()
