#!/usr/bin/env python3
"""Writes dequantization test vectors for Reel's reference dequantizer (tests/gguf).

For every supported ggml type it draws random-but-valid blocks (random bytes, with the fp16
scale fields overwritten by finite values of moderate size) and dequantizes them with the gguf
Python package, an implementation independent of Reel's. Output, per type NAME:
  tests/fixtures/quant/NAME.blocks  the raw blocks
  tests/fixtures/quant/NAME.f32     the expected values, little-endian float32
Seeded, so reruns produce identical files.  Usage: make_quant_vectors.py [out_dir]
"""
import sys
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

BLOCKS_PER_TYPE = 8
FLOAT_ELEMS = 256  # elements for the float types, which have 1-element "blocks"

# Byte offsets of the fp16 scale / min fields inside one block of each type.
FP16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def moderate_fp16(rng, n):
    """Finite halves with magnitudes in [2^-10, 8), random sign; fp16 little-endian bytes."""
    mag = np.exp2(rng.uniform(-10, 3, n))
    sign = rng.choice([-1.0, 1.0], n)
    return (mag * sign).astype("<f2")


def quant_blocks(rng, qtype):
    _, block_bytes = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (BLOCKS_PER_TYPE, block_bytes), dtype=np.uint8)
    for off in FP16_FIELDS[qtype]:
        raw[:, off:off + 2] = moderate_fp16(rng, BLOCKS_PER_TYPE).view(np.uint8).reshape(-1, 2)
    return raw


def float_blocks(rng, qtype):
    values = moderate_fp16(rng, FLOAT_ELEMS).astype(np.float32)
    if qtype == T.F16:
        return values.astype("<f2").view(np.uint8).reshape(1, -1)
    # BF16: the upper halves of random float32s (any finite pattern is valid).
    bits = (values * rng.uniform(0.5, 2.0, FLOAT_ELEMS).astype(np.float32)).view("<u4")
    return (bits >> 16).astype("<u2").view(np.uint8).reshape(1, -1)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/quant")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    for qtype in [T.F16, T.BF16, *FP16_FIELDS]:
        raw = float_blocks(rng, qtype) if qtype in (T.F16, T.BF16) else quant_blocks(rng, qtype)
        values = dequantize(raw, qtype).astype("<f4").reshape(-1)
        assert np.all(np.isfinite(values)), qtype.name
        (out / f"{qtype.name}.blocks").write_bytes(raw.tobytes())
        (out / f"{qtype.name}.f32").write_bytes(values.tobytes())
        print(f"{qtype.name}: {raw.nbytes} bytes -> {values.size} values")


if __name__ == "__main__":
    main()
