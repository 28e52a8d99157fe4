#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/writer-sample.gguf with the gguf package's GGUFWriter: one key of
every metadata value type (including nested arrays), a custom alignment and a few small tensors
of several ggml types. tests/gguf/reader_test.cpp checks every value listed here.
Usage: make_gguf_sample.py [out_path]
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFValueType as V, GGUFWriter


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/gguf/writer-sample.gguf"
    w = GGUFWriter(path, arch="reeltest")  # writes general.architecture = "reeltest"
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 0.1)
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_f32", [0.5, -0.25])
    w.add_array("t.arr_bool", [True, False, True])
    w.add_array("t.arr_str", ["a", "", "xyz"])
    w.add_key_value("t.arr_u8", [7, 8, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("t.arr_i64", [-(2**40), 2**40], V.ARRAY, sub_type=V.INT64)
    w.add_array("t.nested", [[1, 2], [3], [4, 5, 6]])
    w.add_array("t.nested_str", [["p", "q"], ["r"]])

    w.add_tensor("f32", np.arange(12, dtype=np.float32).reshape(3, 4))  # ne = [4, 3]
    w.add_tensor("f16", np.arange(-4, 4, dtype=np.float16))
    bf16_bits = (np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32).view(np.uint32) >> 16)
    w.add_tensor("bf16", bf16_bits.astype(np.uint16), raw_dtype=T.BF16)
    # Q8_0: 2 rows of one block each, d = 0.5 (fp16 0x3800), q = -16..15 then 0..31.
    q8 = np.zeros((2, 34), dtype=np.uint8)
    q8[:, 0:2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    q8[0, 2:] = np.arange(-16, 16, dtype=np.int8).view(np.uint8)
    q8[1, 2:] = np.arange(0, 32, dtype=np.int8).view(np.uint8)
    w.add_tensor("q8_0", q8, raw_dtype=T.Q8_0)
    q4k = np.random.default_rng(7).integers(0, 256, (1, 144), dtype=np.uint8)
    w.add_tensor("q4_k", q4k, raw_dtype=T.Q4_K)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
