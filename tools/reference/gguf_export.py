"""Write Qwen3-VL GGUF files the way llama.cpp's converter (and llama-quantize) would.

Text model: converter class `Qwen3VLTextModel` (spec section 9.2), arch `qwen3vl`.
mmproj:     converter class `Qwen3VLVisionModel` (spec section 9.3), arch `clip`.

Type selection:
  f32 / f16 / q8_0  -- convert_hf_to_gguf.py --outtype: 1-D tensors (norms, biases) F32, every
                       2-D weight in the out type (Q8_0 falls back to F16 if ne[0] % 32 != 0).
  q4_k_m            -- llama-quantize Q4_K_M (src/llama-quant.cpp, llama_tensor_get_type_impl +
                       tensor_type_fallback): base Q4_K; output.weight, and token_embd.weight when
                       there is no output.weight, -> Q6_K (Q8_0 directly if ne[0] % 256 != 0);
                       attn_v and ffn_down -> Q6_K on use_more_bits layers; any K type whose
                       ne[0] % 256 != 0 falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0
                       (-> F16 if still incompatible). 1-D / *_norm.weight tensors stay F32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import gguf

import kquants

T = gguf.GGMLQuantizationType

FILE_TYPES = {  # gguf.LlamaFileType
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "q4_k_m": gguf.LlamaFileType.MOSTLY_Q4_K_M,
}


@dataclass
class TextHParams:
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    mrope_section: list[int]
    n_deepstack: int
    context_length: int = 262144
    name: str = "Qwen3-VL tiny"
    extra_general: dict = field(default_factory=dict)


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _fallback(ne0: int, t: T) -> T:
    """llama-quant.cpp tensor_type_fallback."""
    if ne0 % gguf.GGML_QUANT_SIZES[t][0] == 0:
        return t
    r = {T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}[t]
    if ne0 % gguf.GGML_QUANT_SIZES[r][0] != 0:
        r = T.F16
    return r


def text_tensor_type(name: str, ne0: int, ndim: int, ftype: str, n_layer: int, tied: bool) -> T:
    """GGML type of one text tensor in a file of the given ftype."""
    if ndim < 2 or name.endswith("_norm.weight"):
        return T.F32
    if ftype == "f32":
        return T.F32
    if ftype == "f16":
        return T.F16
    if ftype == "q8_0":
        return T.Q8_0 if ne0 % 32 == 0 else T.F16
    assert ftype == "q4_k_m", ftype
    new = T.Q4_K
    if name == "output.weight" or (tied and name == "token_embd.weight"):
        # nx % qk_k(of the default type Q4_K) != 0 -> Q8_0 directly, else Q6_K
        new = T.Q8_0 if ne0 % 256 != 0 else T.Q6_K
    elif name.endswith("attn_v.weight") or name.endswith("ffn_down.weight"):
        il = int(name.split(".")[1])
        if use_more_bits(il, n_layer):
            new = T.Q6_K
    return _fallback(ne0, new)


def encode(arr: np.ndarray, t: T) -> np.ndarray:
    """Data array for GGUFWriter.add_tensor(raw_dtype=t)."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if t == T.F32:
        return arr
    if t == T.F16:
        return arr.astype(np.float16)
    return kquants.quantize(arr, t)


def decode(data: np.ndarray, t: T) -> np.ndarray:
    """Dequantized float32 values (PyTorch shape) of a tensor read by GGUFReader."""
    return np.asarray(gguf.quants.dequantize(np.asarray(data), t), dtype=np.float32)


def hf_text_to_gguf_name(hf_name: str, n_layer: int) -> str:
    """HF `model.language_model.X` / `lm_head.weight` -> GGUF name via gguf's TensorNameMap."""
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN3VL, n_layer)
    name = hf_name.replace("model.language_model.", "model.", 1)
    new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
    if new is None:
        raise KeyError(hf_name)
    return new


def write_text_kv(w, hp: TextHParams, ftype: str, write_vocab_kv) -> None:
    """The KV set of the converter's Qwen3VLTextModel (spec 9.2) for an ftype."""
    # --- general.* (converter: metadata, then hparams, then file_type, then quantization_version)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(hp.name)
    for k, v in hp.extra_general.items():
        w.add_string(k, v)
    # --- TextModel.set_gguf_parameters
    w.add_block_count(hp.n_layer)
    w.add_context_length(hp.context_length)
    w.add_embedding_length(hp.n_embd)
    w.add_feed_forward_length(hp.n_ff)
    w.add_head_count(hp.n_head)
    w.add_head_count_kv(hp.n_head_kv)
    w.add_rope_freq_base(hp.rope_theta)
    w.add_layer_norm_rms_eps(hp.rms_eps)
    w.add_key_length(hp.head_dim)
    w.add_value_length(hp.head_dim)
    w.add_file_type(FILE_TYPES[ftype])
    sections = list(hp.mrope_section) + [0] * max(0, 4 - len(hp.mrope_section))
    w.add_rope_dimension_sections(sections)
    w.add_num_deepstack_layers(hp.n_deepstack)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_vocab_kv(w)


def write_text_gguf(path: Path, tensors: dict[str, np.ndarray], hp: TextHParams, ftype: str,
                    write_vocab_kv) -> dict[str, str]:
    """tensors: HF name -> float32 array (PyTorch shape), text model only (no visual.*).
    Returns {gguf name: ggml type name}."""
    tied = "lm_head.weight" not in tensors
    w = gguf.GGUFWriter(str(path), arch="qwen3vl")
    write_text_kv(w, hp, ftype, write_vocab_kv)

    # converter order: the checkpoint order (embed, layers..., norm, lm_head) as given
    types: dict[str, str] = {}
    for hf_name, arr in tensors.items():
        name = hf_text_to_gguf_name(hf_name, hp.n_layer)
        t = text_tensor_type(name, arr.shape[-1], arr.ndim, ftype, hp.n_layer, tied)
        w.add_tensor(name, encode(arr, t), raw_dtype=t)
        types[name] = t.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


# ----------------------------------------------------------------------------------------------
# mmproj (spec 9.3)

def mmproj_tensor_list(vis: dict[str, np.ndarray], deepstack_indexes: list[int]):
    """HF `model.visual.*` tensors -> [(gguf name, array)], converter renames/splits applied."""
    out = []
    for hf_name, arr in vis.items():
        name = hf_name.replace("model.visual.", "", 1)
        if name == "patch_embed.proj.weight":            # [D, C, kt=2, p, p] -> two Conv2D
            assert arr.shape[2] == 2
            out.append(("v.patch_embd.weight", np.ascontiguousarray(arr[:, :, 0])))
            out.append(("v.patch_embd.weight.1", np.ascontiguousarray(arr[:, :, 1])))
            continue
        if name == "patch_embed.proj.bias":
            out.append(("v.patch_embd.bias", arr)); continue
        if name == "pos_embed.weight":
            out.append(("v.position_embd.weight", arr)); continue
        parts = name.split(".")
        if parts[0] == "blocks":
            n, rest = parts[1], ".".join(parts[2:])
            m = {"norm1": "ln1", "norm2": "ln2", "attn.qkv": "attn_qkv", "attn.proj": "attn_out",
                 "mlp.linear_fc1": "ffn_up", "mlp.linear_fc2": "ffn_down"}
            stem, suf = rest.rsplit(".", 1)
            out.append((f"v.blk.{n}.{m[stem]}.{suf}", arr)); continue
        if parts[0] == "merger":
            stem, suf = ".".join(parts[1:-1]), parts[-1]
            m = {"norm": "v.post_ln", "linear_fc1": "mm.0", "linear_fc2": "mm.2"}
            out.append((f"{m[stem]}.{suf}", arr)); continue
        if parts[0] == "deepstack_merger_list":
            L = deepstack_indexes[int(parts[1])]
            stem, suf = ".".join(parts[2:-1]), parts[-1]
            m = {"norm": "norm", "linear_fc1": "fc1", "linear_fc2": "fc2"}
            out.append((f"v.deepstack.{L}.{m[stem]}.{suf}", arr)); continue
        raise KeyError(hf_name)
    return out


def mmproj_tensor_type(name: str, ndim: int, ne0: int, ftype: str) -> T:
    if ndim < 2 or name.endswith("_norm.weight") or name == "v.position_embd.weight":
        return T.F32
    if name.startswith("v.patch_embd.weight"):
        return T.F16 if ftype == "f16" else T.F32
    if ftype == "f32":
        return T.F32
    if ftype == "f16":
        return T.F16
    if ftype == "q8_0":
        return T.Q8_0 if ne0 % 32 == 0 else T.F16
    raise ValueError(ftype)


def write_mmproj_gguf(path: Path, vis: dict[str, np.ndarray], vcfg: dict, text_hidden: int,
                      rms_eps: float, ftype: str, name: str = "Qwen3-VL tiny mmproj") -> dict[str, str]:
    w = gguf.GGUFWriter(str(path), arch="clip")
    w.add_type(gguf.GGUFType.MMPROJ)
    w.add_name(name)
    w.add_file_type(FILE_TYPES[ftype])
    # MmprojModel.set_gguf_parameters
    w.add_clip_has_vision_encoder(True)
    image_size = int(vcfg["num_position_embeddings"] ** 0.5 * vcfg["patch_size"])
    w.add_vision_projection_dim(text_hidden)
    w.add_vision_image_size(image_size)
    w.add_vision_patch_size(vcfg["patch_size"])
    w.add_vision_embedding_length(vcfg["hidden_size"])
    w.add_vision_feed_forward_length(vcfg["intermediate_size"])
    w.add_vision_block_count(vcfg["depth"])
    w.add_vision_head_count(vcfg["num_heads"])
    w.add_vision_image_mean([0.5, 0.5, 0.5])
    w.add_vision_image_std([0.5, 0.5, 0.5])
    # Qwen3VLVisionModel.set_gguf_parameters
    w.add_clip_projector_type(gguf.VisionProjectorType.QWEN3VL)
    w.add_vision_use_gelu(True)
    w.add_vision_spatial_merge_size(vcfg["spatial_merge_size"])
    w.add_vision_attention_layernorm_eps(rms_eps)
    is_ds = [False] * vcfg["depth"]
    for i in vcfg["deepstack_visual_indexes"]:
        is_ds[i] = True
    w.add_vision_is_deepstack_layers(is_ds)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    types = {}
    for gname, arr in mmproj_tensor_list(vis, list(vcfg["deepstack_visual_indexes"])):
        t = mmproj_tensor_type(gname, arr.ndim, arr.shape[-1], ftype)
        w.add_tensor(gname, encode(arr, t), raw_dtype=t)
        types[gname] = t.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


# ----------------------------------------------------------------------------------------------
# Qwen3.5 text (arch `qwen35`): the converter's Qwen3_5TextModel, i.e. Qwen3NextModel's tensor
# rules plus _LinearAttentionVReorderBase's V-head reorder (convert_hf_to_gguf.py, facts only):
#   * every `*norm.weight` except `linear_attn.norm.weight` gets +1 (Qwen3.5's RMSNorm is
#     zero-centred: it scales by 1 + w);
#   * `linear_attn.A_log` -> `blk.N.ssm_a` = -exp(A_log);  `linear_attn.dt_bias` -> `ssm_dt.bias`;
#   * `linear_attn.conv1d.weight` [C, 1, K] squeezed to [C, K] (ne = [K, C]), always F32;
#   * when linear_num_key_heads != linear_num_value_heads, the value heads are reordered from
#     HF's grouped order (value head h uses key head h // r) to the tiled order (value head j
#     uses key head j % n_k): the V rows of in_proj_qkv and of conv1d, the rows of in_proj_z /
#     in_proj_a / in_proj_b, A_log, dt_bias, and the columns of out_proj;
#   * the MTP head (`mtp.*`) is dropped (transformers ignores it too);
#   * KV: the TextModel keys, then ssm.conv_kernel, ssm.state_size (linear_key_head_dim),
#     ssm.group_count (linear_num_key_heads), ssm.time_step_rank (linear_num_value_heads),
#     ssm.inner_size (linear_value_head_dim * linear_num_value_heads), full_attention_interval,
#     rope.dimension_count (head_dim * partial_rotary_factor) and rope.dimension_sections.

@dataclass
class Qwen35HParams:
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    rope_dim: int                 # rotary dimensions per head (head_dim * partial_rotary_factor)
    mrope_section: list[int]
    conv_kernel: int
    k_head_dim: int               # ssm.state_size
    n_k_heads: int                # ssm.group_count
    n_v_heads: int                # ssm.time_step_rank
    v_head_dim: int               # ssm.inner_size / n_v_heads
    full_attention_interval: int
    context_length: int = 262144
    name: str = "Qwen3.5 tiny"


def reorder_v_heads(arr: np.ndarray, axis: int, n_k: int, r: int, head_dim: int,
                    inverse: bool = False) -> np.ndarray:
    """Grouped [k0v0..k0v(r-1), k1v0, ...] <-> tiled [k0v0, k1v0, ..., k0v1, ...] along axis."""
    arr = np.moveaxis(arr, axis, 0)
    rest = arr.shape[1:]
    if not inverse:
        out = arr.reshape(n_k, r, head_dim, *rest).swapaxes(0, 1)
    else:
        out = arr.reshape(r, n_k, head_dim, *rest).swapaxes(0, 1)
    return np.moveaxis(np.ascontiguousarray(out).reshape(arr.shape), 0, axis)


def qwen35_hf_to_gguf(hf_name: str, arr: np.ndarray, hp: Qwen35HParams) -> tuple[str, np.ndarray]:
    """One HF tensor (`model.X` / `lm_head.weight`) -> (GGUF name, array as stored)."""
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN35, hp.n_layer)
    name = hf_name.replace("model.language_model.", "model.", 1)
    r = hp.n_v_heads // hp.n_k_heads
    key_dim = hp.k_head_dim * hp.n_k_heads
    if r > 1 and "linear_attn." in name:
        if ".in_proj_qkv." in name or ".conv1d." in name:
            qk, v = arr[:2 * key_dim], arr[2 * key_dim:]
            arr = np.concatenate([qk, reorder_v_heads(v, 0, hp.n_k_heads, r, hp.v_head_dim)], 0)
        elif ".in_proj_z." in name:
            arr = reorder_v_heads(arr, 0, hp.n_k_heads, r, hp.v_head_dim)
        elif ".in_proj_a." in name or ".in_proj_b." in name or name.endswith((".A_log", ".dt_bias")):
            arr = reorder_v_heads(arr, 0, hp.n_k_heads, r, 1)
        elif ".out_proj." in name:
            arr = reorder_v_heads(arr, 1, hp.n_k_heads, r, hp.v_head_dim)
    if name.endswith(".A_log"):
        arr = -np.exp(arr.astype(np.float32))
    elif name.endswith(".dt_bias"):
        name = name[: -len(".dt_bias")] + ".dt_proj.bias"
    elif "conv1d" in name:
        arr = arr.reshape(arr.shape[0], arr.shape[-1])
    elif name.endswith("norm.weight") and not name.endswith("linear_attn.norm.weight"):
        arr = arr + np.float32(1)
    new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
    if new is None:
        raise KeyError(hf_name)
    return new, np.ascontiguousarray(arr, dtype=np.float32)


def qwen35_gguf_to_hf(values: np.ndarray, hf_name: str, hf_shape: tuple, hp: Qwen35HParams) -> np.ndarray:
    """Inverse of qwen35_hf_to_gguf's value transform (the decoded GGUF tensor -> HF parameter)."""
    name = hf_name.replace("model.language_model.", "model.", 1)
    arr = values
    if name.endswith(".A_log"):
        arr = np.log(-arr.astype(np.float64)).astype(np.float32)
    elif "conv1d" in name:
        arr = arr.reshape(hf_shape)
    elif name.endswith("norm.weight") and not name.endswith("linear_attn.norm.weight"):
        arr = arr - np.float32(1)
    arr = arr.reshape(hf_shape)
    r = hp.n_v_heads // hp.n_k_heads
    key_dim = hp.k_head_dim * hp.n_k_heads
    if r > 1 and "linear_attn." in name:
        if ".in_proj_qkv." in name or ".conv1d." in name:
            qk, v = arr[:2 * key_dim], arr[2 * key_dim:]
            arr = np.concatenate([qk, reorder_v_heads(v, 0, hp.n_k_heads, r, hp.v_head_dim, True)], 0)
        elif ".in_proj_z." in name:
            arr = reorder_v_heads(arr, 0, hp.n_k_heads, r, hp.v_head_dim, True)
        elif ".in_proj_a." in name or ".in_proj_b." in name or name.endswith((".A_log", ".dt_bias")):
            arr = reorder_v_heads(arr, 0, hp.n_k_heads, r, 1, True)
        elif ".out_proj." in name:
            arr = reorder_v_heads(arr, 1, hp.n_k_heads, r, hp.v_head_dim, True)
    return np.ascontiguousarray(arr, dtype=np.float32)


def qwen35_tensor_type(name: str, ne0: int, ndim: int, ftype: str) -> T:
    """Converter rule: 1-D, *_norm.weight, ssm_conv1d and non-`.weight` tensors stay F32."""
    if ndim < 2 or name.endswith("_norm.weight") or ".ssm_conv1d." in name or not name.endswith(".weight"):
        return T.F32
    if ftype == "f32":
        return T.F32
    if ftype == "f16":
        return T.F16
    if ftype == "q8_0":
        return T.Q8_0 if ne0 % 32 == 0 else T.F16
    raise ValueError(ftype)


def write_qwen35_kv(w, hp: Qwen35HParams, ftype: str, write_vocab_kv) -> None:
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(hp.name)
    w.add_block_count(hp.n_layer)
    w.add_context_length(hp.context_length)
    w.add_embedding_length(hp.n_embd)
    w.add_feed_forward_length(hp.n_ff)
    w.add_head_count(hp.n_head)
    w.add_head_count_kv(hp.n_head_kv)
    sections = list(hp.mrope_section) + [0] * max(0, 4 - len(hp.mrope_section))
    w.add_rope_dimension_sections(sections[:4])
    w.add_rope_freq_base(hp.rope_theta)
    w.add_layer_norm_rms_eps(hp.rms_eps)
    w.add_key_length(hp.head_dim)
    w.add_value_length(hp.head_dim)
    w.add_file_type(FILE_TYPES[ftype])
    w.add_ssm_conv_kernel(hp.conv_kernel)
    w.add_ssm_state_size(hp.k_head_dim)
    w.add_ssm_group_count(hp.n_k_heads)
    w.add_ssm_time_step_rank(hp.n_v_heads)
    w.add_ssm_inner_size(hp.v_head_dim * hp.n_v_heads)
    w.add_full_attention_interval(hp.full_attention_interval)
    w.add_rope_dimension_count(hp.rope_dim)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_vocab_kv(w)


def write_qwen35_gguf(path: Path, tensors: dict[str, np.ndarray], hp: Qwen35HParams, ftype: str,
                      write_vocab_kv) -> tuple[dict[str, str], dict[str, str]]:
    """tensors: HF name -> float32 array, text model only, checkpoint order.
    Returns ({gguf name: ggml type name}, {gguf name: HF name})."""
    w = gguf.GGUFWriter(str(path), arch="qwen35")
    write_qwen35_kv(w, hp, ftype, write_vocab_kv)
    types: dict[str, str] = {}
    g2h: dict[str, str] = {}
    for hf_name, arr in tensors.items():
        name, data = qwen35_hf_to_gguf(hf_name, arr, hp)
        t = qwen35_tensor_type(name, data.shape[-1], data.ndim, ftype)
        w.add_tensor(name, encode(data, t), raw_dtype=t)
        types[name] = t.name
        g2h[name] = hf_name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types, g2h
