#!/usr/bin/env python3
"""Image fixtures from transformers: preprocessing, smart_resize, vision encoder, image prompts.

Writes (relative to the repo root):
  tests/fixtures/vision/images.json            per-image preprocessing reference
  tests/fixtures/vision/rgb/NAME.decoded.rgb.xz   uint8 RGB after transformers' load_image
  tests/fixtures/vision/rgb/NAME.resized.rgb.xz   uint8 RGB after the processor's resize
  tests/fixtures/vision/smart_resize.json      smart_resize() cases incl. errors
  tests/fixtures/vision/encoder.json[.xz]      tiny-a vision tower outputs (+ DeepStack, intermediates)
  tests/fixtures/vision/prompts.json[.xz]      tiny-a image prompts: ids, 3-axis positions, logits, greedy
  tests/fixtures/models/tiny-a-mmproj-f16.gguf.xz

Inputs: tests/fixtures/images/* (make_test_images.py) and tests/data/media/photo-640x488.jpeg.
The tiny-a model is rebuilt from make_fixtures.py (same seed => same weights) and checked against
the committed tiny-a-f32.gguf.xz / tiny-a-mmproj-f32.gguf.xz.

    python tools/reference/make_vision_fixtures.py      # ~1-2 min on 2 cores
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402
import torch  # noqa: E402

import gguf_export as ge  # noqa: E402
import make_fixtures as mf  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

IMG_DIR = ROOT / "tests/fixtures/images"
VIS_DIR = ROOT / "tests/fixtures/vision"
RGB_DIR = VIS_DIR / "rgb"
# Third-party assets (tests/data/README.md); REEL_TEST_DATA overrides the folder.
TEST_DATA = Path(os.environ.get("REEL_TEST_DATA", ROOT / "tests/data"))

PATCH, MERGE, TEMPORAL = 16, 2, 2
FACTOR = PATCH * MERGE
MIN_PIXELS = 65536          # Qwen3-VL preprocessor_config.json size.shortest_edge (spec 3.1)
MAX_PIXELS = 16777216       # size.longest_edge
N_GREEDY = 32

# name, path (relative to repo, or "shared:data/..." = TEST_DATA/...), budget override or None
IMAGES = [
    ("rgb-97x61", "tests/fixtures/images/rgb-97x61.png", None),
    ("rgb-32x32", "tests/fixtures/images/rgb-32x32.png", None),
    ("rgb-40x33", "tests/fixtures/images/rgb-40x33.png", None),
    ("rgba-80x56", "tests/fixtures/images/rgba-80x56.png", None),
    ("gray-72x50", "tests/fixtures/images/gray-72x50.png", None),
    ("gray16-64x48", "tests/fixtures/images/gray16-64x48.png", None),
    ("rgb16-60x44", "tests/fixtures/images/rgb16-60x44.png", None),
    ("exif6-stored96x64", "tests/fixtures/images/exif6-stored96x64.jpg", None),
    ("rgb-70x45-webp", "tests/fixtures/images/rgb-70x45.webp", None),
    ("rgb-50x37-bmp", "tests/fixtures/images/rgb-50x37.bmp", None),
    ("anim-48x40-gif", "tests/fixtures/images/anim-48x40.gif", None),
    ("large-320x200", "tests/fixtures/images/large-320x200.png", (4096, 32768)),
    ("photo-640x488", "shared:data/media/photo-640x488.jpeg", None),
    # small budget (not the model default) to get a tiny grid for debugging the encoder
    ("rgb-97x61-small", "tests/fixtures/images/rgb-97x61.png", (1024, 8192)),
]
NO_DECODED_DUMP = {"photo-640x488"}   # keep the committed size down (checksum only)

ENCODER_IMAGES = ["rgb-97x61-small", "rgb-32x32", "rgb-97x61", "exif6-stored96x64"]
INTERMEDIATE_IMAGE = "rgb-97x61-small"

PROMPTS = [
    ("single", ["rgb-97x61"],
     "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
     "<|im_start|>assistant\n"),
    ("two_images", ["rgb-32x32", "exif6-stored96x64"],
     "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|>"
     "<|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n"),
]

f32 = mf.f32


def resolve(src: str) -> Path:
    # "shared:data/" is the source's historical prefix, kept so images.json need not change.
    prefix = "shared:data/"
    return TEST_DATA / src[len(prefix):] if src.startswith(prefix) else ROOT / src


def floats(a) -> list:
    return [f32(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def nested(a) -> list:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        return floats(a)
    return [nested(x) for x in a]


def write_xz(path: Path, data: bytes) -> None:
    path.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def image_processor(budget=None):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    mn, mx = budget or (MIN_PIXELS, MAX_PIXELS)
    # what Qwen3-VL's preprocessor_config.json yields (image_processor_type Qwen2VLImageProcessorFast
    # -> the torchvision backend class Qwen2VLImageProcessor in transformers 5.x)
    return Qwen2VLImageProcessor(patch_size=PATCH, temporal_patch_size=TEMPORAL, merge_size=MERGE,
                                 image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                                 size={"shortest_edge": mn, "longest_edge": mx})


def pv_stats(pv: np.ndarray) -> dict:
    pv = np.ascontiguousarray(pv, dtype=np.float32)
    n = pv.size
    w = ((np.arange(n, dtype=np.int64) % 997) + 1).astype(np.float64) / 997.0
    return {"shape": list(pv.shape),
            "sha256_f32le": hashlib.sha256(pv.astype("<f4").tobytes()).hexdigest(),
            "sum": float(pv.astype(np.float64).sum()),
            "weighted_sum": float((pv.astype(np.float64).ravel() * w).sum()),
            "row0": floats(pv[0]), "row1": floats(pv[1])}


# ----------------------------------------------------------------------------------------------

def preprocess_all():
    import PIL.Image
    from transformers.image_utils import load_image, SizeDict, PILImageResampling
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
    RGB_DIR.mkdir(parents=True, exist_ok=True)
    for old in RGB_DIR.iterdir():
        old.unlink()
    entries, pils = [], {}
    for name, src, budget in IMAGES:
        path = resolve(src)
        raw = PIL.Image.open(path)
        raw_mode, raw_size = raw.mode, raw.size
        orient = raw.getexif().get(0x0112)
        pil = load_image(str(path))                         # exif_transpose + convert("RGB")
        pils[name] = pil
        ip = image_processor(budget)
        mn, mx = ip.size["shortest_edge"], ip.size["longest_edge"]
        w, h = pil.size
        rh, rw = smart_resize(h, w, factor=FACTOR, min_pixels=mn, max_pixels=mx)
        out = ip(images=pil, return_tensors="pt")
        pv = out["pixel_values"].numpy()
        thw = out["image_grid_thw"][0].tolist()
        # the resize exactly as the processor does it (uint8 CHW tensor -> torchvision resize)
        dec = np.array(pil)                                # [h, w, 3] uint8
        t = torch.from_numpy(dec).permute(2, 0, 1).contiguous()[None]
        rs = ip.resize(t, size=SizeDict(shortest_edge=mn, longest_edge=mx),
                       resample=PILImageResampling.BICUBIC, factor=FACTOR)[0]
        assert tuple(rs.shape[1:]) == (rh, rw), (rs.shape, rh, rw)
        # check the hook: normalize + patchify of our resized image == the processor's output
        x = (rs.float() - 127.5) / 127.5
        p, gh, gw = ip.patchify(x[None], PATCH, MERGE, TEMPORAL)
        assert np.array_equal(p[0].numpy(), pv), name
        assert thw == [1, rh // PATCH, rw // PATCH]
        resized = rs.permute(1, 2, 0).contiguous().numpy()  # [rh, rw, 3]
        # how far PIL's bicubic and torch's float path are from the processor's uint8 result
        pil_rs = np.array(pil.resize((rw, rh), PIL.Image.BICUBIC)).astype(int)
        fl = torch.nn.functional.interpolate(t.float(), size=(rh, rw), mode="bicubic",
                                             align_corners=False, antialias=True)
        fl = fl.clamp(0, 255).round()[0].permute(1, 2, 0).numpy().astype(int)
        e = {"name": name, "source": src, "file_mode": raw_mode, "file_size": list(raw_size),
             "exif_orientation": orient,
             "min_pixels": mn, "max_pixels": mx, "budget": "test" if budget else "default",
             "size": [w, h], "resized": [rw, rh], "grid_thw": thw,
             "n_tokens": thw[0] * thw[1] * thw[2] // (MERGE * MERGE),
             "decoded_sha256": hashlib.sha256(dec.tobytes()).hexdigest(),
             "decoded_sum": int(dec.astype(np.int64).sum()),
             "resized_sha256": hashlib.sha256(resized.tobytes()).hexdigest(),
             "resized_sum": int(resized.astype(np.int64).sum()),
             "pil_bicubic_maxdiff": int(np.abs(pil_rs - resized).max()),
             "torch_float_bicubic_maxdiff": int(np.abs(fl - resized).max()),
             "pixel_values": pv_stats(pv)}
        if name not in NO_DECODED_DUMP:
            e["decoded_rgb"] = f"vision/rgb/{name}.decoded.rgb"
            write_xz(RGB_DIR / f"{name}.decoded.rgb.xz", dec.tobytes())
        e["resized_rgb"] = f"vision/rgb/{name}.resized.rgb"
        write_xz(RGB_DIR / f"{name}.resized.rgb.xz", resized.tobytes())
        entries.append(e)
        print(f"  {name:20s} {raw_mode:5s} {w}x{h} -> {rw}x{rh} grid {thw} tokens {e['n_tokens']} "
              f"pil diff {e['pil_bicubic_maxdiff']} float diff {e['torch_float_bicubic_maxdiff']}", flush=True)
    return entries, pils


def conversions_note() -> dict:
    """What load_image's PIL convert('RGB') does for the special modes (recorded from PIL itself)."""
    import PIL.Image
    out = {}
    g16 = PIL.Image.fromarray(np.array([[0, 255, 256, 1000, 65535]], dtype=np.uint16))
    out["I;16->RGB"] = {"in": [0, 255, 256, 1000, 65535],
                        "out_R": np.array(g16.convert("RGB"))[0, :, 0].tolist()}
    rgba = PIL.Image.fromarray(np.array([[[200, 100, 50, 0], [200, 100, 50, 128]]], dtype=np.uint8))
    out["RGBA->RGB"] = {"in": [[200, 100, 50, 0], [200, 100, 50, 128]],
                        "out": np.array(rgba.convert("RGB"))[0].tolist()}
    return out


# ----------------------------------------------------------------------------------------------

def smart_resize_cases() -> dict:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
    pairs = []
    # ties: h/32 = k + 0.5 (round half to even), both parities, plus neighbours
    for k in range(1, 40, 3):
        for d in (-1, 0, 1):
            pairs.append((32 * k + 16 + d, 32 * (k + 7) + 16))
    pairs += [(720, 1280), (1280, 720), (224, 224), (3024, 4032), (4032, 3024), (488, 640), (61, 97),
              (32, 32), (33, 40), (1080, 1920), (2160, 3840), (4096, 4096), (4097, 4096), (8192, 8192),
              (600, 800), (1, 1), (1, 200), (1, 201), (2, 400), (5, 1000), (31, 31), (16, 16), (20, 500),
              (32, 6400), (32, 6401), (6401, 32), (100, 20000), (100, 20001), (0, 10), (10, 0), (0, 0),
              (255, 257), (256, 256), (257, 255), (240, 272), (272, 240), (48, 48), (80, 80), (112, 112),
              (10000, 10000), (5000, 7000), (3000, 12000), (50, 9999), (12345, 678), (777, 333)]
    rng = np.random.default_rng(42)
    for _ in range(80):
        pairs.append((int(rng.integers(1, 5000)), int(rng.integers(1, 5000))))
    budgets = [(MIN_PIXELS, MAX_PIXELS)]
    extra = [((4096, 32768), [(200, 320), (320, 200), (61, 97), (1000, 30), (32, 6000), (64, 64), (48, 4000),
                              (1, 1), (720, 1280)]),
             ((8192, 4194304), [(720, 1280), (3024, 4032), (224, 224), (20, 20)]),   # llama.cpp limits
             ((1024, 8192), [(61, 97), (32, 32), (33, 40), (100, 100)])]
    cases = []

    def run(h, w, mn, mx):
        c = {"h": h, "w": w, "min_pixels": mn, "max_pixels": mx}
        try:
            rh, rw = smart_resize(h, w, factor=FACTOR, min_pixels=mn, max_pixels=mx)
            c["result"] = [rh, rw]
        except Exception as ex:  # noqa: BLE001
            c["error"] = type(ex).__name__
        cases.append(c)
    for h, w in pairs:
        run(h, w, *budgets[0])
    for (mn, mx), ps in extra:
        for h, w in ps:
            run(h, w, mn, mx)
    return {"function": "transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize",
            "factor": FACTOR, "note": "result = [resized_h, resized_w]; error = Python exception class name",
            "cases": cases}


# ----------------------------------------------------------------------------------------------

def check_weights(model) -> None:
    """The rebuilt tiny-a == the committed f32 text GGUF and f32 mmproj GGUF (bit exact)."""
    with tempfile.TemporaryDirectory() as td:
        for fname in ("tiny-a-mmproj-f32.gguf", "tiny-a-f32.gguf"):
            p = Path(td) / fname
            p.write_bytes(lzma.decompress((ROOT / "tests/fixtures/models" / f"{fname}.xz").read_bytes()))
            r = gguf.GGUFReader(str(p))
            got = {t.name: ge.decode(t.data, t.tensor_type) for t in r.tensors}
            if "mmproj" in fname:
                vc = model.config.vision_config
                exp = dict(ge.mmproj_tensor_list(mf.vision_tensors(model), list(vc.deepstack_visual_indexes)))
            else:
                tt = mf.text_tensors(model)
                tt.pop("lm_head.weight", None)
                exp = {ge.hf_text_to_gguf_name(k, 2): v for k, v in tt.items()}
            assert set(got) == set(exp), set(got) ^ set(exp)
            for k, v in exp.items():
                assert np.array_equal(got[k].reshape(v.shape), v), (fname, k)
    print("  weights == committed tiny-a-f32.gguf.xz and tiny-a-mmproj-f32.gguf.xz")


@torch.no_grad()
def encoder_dumps(model, pils) -> dict:
    out = []
    for name in ENCODER_IMAGES:
        budget = dict((n, b) for n, _, b in IMAGES)[name]
        ip = image_processor(budget)
        inp = ip(images=pils[name], return_tensors="pt")
        pv, thw = inp["pixel_values"], inp["image_grid_thw"]
        cap = {}
        hooks = []
        if name == INTERMEDIATE_IMAGE:
            blk0 = model.model.visual.blocks[0]
            hooks.append(blk0.register_forward_pre_hook(
                lambda m, a, kw: cap.__setitem__("block0_input", (a[0] if a else kw["hidden_states"]).clone()),
                with_kwargs=True))
            hooks.append(blk0.register_forward_hook(
                lambda m, a, o: cap.__setitem__("block0_output", (o[0] if isinstance(o, tuple) else o).clone())))
        vo = model.model.get_image_features(pv, thw)
        for h in hooks:
            h.remove()
        main = vo.pooler_output[0].numpy()
        ds = [f[0].numpy() for f in vo.deepstack_features]
        e = {"name": name, "grid_thw": thw[0].tolist(), "pixel_values_shape": list(pv.shape),
             "n_tokens": int(main.shape[0]), "out_dim": int(main.shape[1]),
             "main": nested(main), "deepstack": [nested(d) for d in ds],
             "last_hidden_state_sum": float(vo.last_hidden_state.double().sum())}
        if cap:
            e["block0_input"] = nested(cap["block0_input"].reshape(-1, cap["block0_input"].shape[-1]).numpy())
            e["block0_output"] = nested(cap["block0_output"].reshape(-1, cap["block0_output"].shape[-1]).numpy())
        out.append(e)
        print(f"  encoder {name}: {list(pv.shape)} -> {main.shape}, deepstack {len(ds)}", flush=True)
    return out


def spec_positions(ids: list[int], grids: list) -> list:
    """Spec 6.3 walk: text (n,n,n); image block (base, base+r, base+c); next = base + max(Hm, Wm)."""
    out, nxt, i, it = [[], [], []], 0, 0, iter(grids)
    while i < len(ids):
        if ids[i] == 151655:
            _, gh, gw = next(it)
            hm, wm = gh // MERGE, gw // MERGE
            for r in range(hm):
                for c in range(wm):
                    out[0].append(nxt); out[1].append(nxt + r); out[2].append(nxt + c)
            i += hm * wm
            nxt += max(hm, wm)
        else:
            for a in out:
                a.append(nxt)
            nxt += 1
            i += 1
    return out


@torch.no_grad()
def prompt_dumps(model, pils) -> tuple[list, list]:
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    import qwen3vl_vocab
    tok = qwen3vl_vocab.hf_tokenizer()
    proc = Qwen3VLProcessor(image_processor=image_processor(), tokenizer=tok,
                            video_processor=Qwen3VLVideoProcessor())
    cases, all_logits = [], []
    for cname, img_names, text in PROMPTS:
        inp = proc(images=[pils[n] for n in img_names], text=[text], return_tensors="pt")
        ids = inp["input_ids"]
        pos, delta = model.model.get_rope_index(ids, image_grid_thw=inp["image_grid_thw"], video_grid_thw=None,
                                                attention_mask=inp["attention_mask"],
                                                mm_token_type_ids=inp["mm_token_type_ids"])
        model.model.rope_deltas = None
        lg = model(**inp, use_cache=False).logits[0].float().numpy()
        # greedy, exactly N_GREEDY new tokens, KV-cached
        model.model.rope_deltas = None
        g = model.generate(**inp, do_sample=False, max_new_tokens=N_GREEDY, min_new_tokens=N_GREEDY,
                           eos_token_id=None, pad_token_id=151643, temperature=None, top_p=None, top_k=None,
                           repetition_penalty=None)
        gen = g[0, ids.shape[1]:].tolist()
        assert len(gen) == N_GREEDY
        # consistency: full recompute over prompt + generated
        model.model.rope_deltas = None
        full = torch.cat([ids, torch.tensor([gen[:-1]])], 1)
        mm = torch.cat([inp["mm_token_type_ids"], torch.zeros(1, N_GREEDY - 1, dtype=inp["mm_token_type_ids"].dtype)], 1)
        chk = model(input_ids=full, attention_mask=torch.ones_like(full), pixel_values=inp["pixel_values"],
                    image_grid_thw=inp["image_grid_thw"], mm_token_type_ids=mm, use_cache=False).logits[0]
        chk = chk[ids.shape[1] - 1:].argmax(-1).tolist()
        agree = sum(int(a == b) for a, b in zip(chk, gen))
        if agree != N_GREEDY:
            print(f"  note: {cname}: greedy vs recompute argmax agree {agree}/{N_GREEDY}")
        model.model.rope_deltas = None
        idl = ids[0].tolist()
        assert pos[:, 0, :].tolist() == spec_positions(idl, inp["image_grid_thw"].tolist()), cname
        case = {"name": cname, "text": text, "images": img_names,
                "image_grid_thw": inp["image_grid_thw"].tolist(),
                "n_image_tokens": [int(t[1] * t[2] // 4) for t in inp["image_grid_thw"].tolist()],
                "ids": idl, "position_ids": pos[:, 0, :].tolist(), "rope_delta": int(delta[0]),
                "greedy": gen, "greedy_recompute_agree": agree}
        cases.append(case)
        all_logits.append(lg)
        print(f"  prompt {cname}: {len(idl)} ids, delta {int(delta[0])}, greedy {gen[:8]}...", flush=True)
    cols = set(range(128))
    for case, lg in zip(cases, all_logits):
        cols.update(case["ids"])
        cols.update(case["greedy"])
        cols.update(np.argsort(-lg, axis=1)[:, :8].ravel().tolist())
    rng = np.random.default_rng(4321)
    cols.update(rng.integers(0, mf.VOCAB, mf.N_RANDOM_COLUMNS).tolist())
    while len(cols) < mf.N_COLUMNS:
        cols.add(int(rng.integers(0, mf.VOCAB)))
    columns = sorted(int(c) for c in cols)
    cidx = np.array(columns)
    for case, lg in zip(cases, all_logits):
        case["logits"] = [[f32(v) for v in row[cidx]] for row in lg]
        case["stats"] = [mf.row_stats(row) for row in lg]
    return columns, cases


def mmproj_f16(model) -> dict:
    vc = model.config.vision_config
    vcfg = {k: getattr(vc, k) for k in ("depth", "hidden_size", "num_heads", "intermediate_size", "patch_size",
                                         "spatial_merge_size", "num_position_embeddings",
                                         "deepstack_visual_indexes")}
    plain = mf.OUT_DIR / "tiny-a-mmproj-f16.gguf"
    mf.OUT_DIR.mkdir(parents=True, exist_ok=True)
    types = ge.write_mmproj_gguf(plain, mf.vision_tensors(model), vcfg, model.config.text_config.hidden_size,
                                 model.config.text_config.rms_norm_eps, "f16")
    # every tiny weight is exact in fp16, so the F16 file decodes to the F32 weights bit for bit
    r = gguf.GGUFReader(str(plain))
    exp = dict(ge.mmproj_tensor_list(mf.vision_tensors(model), list(vc.deepstack_visual_indexes)))
    for t in r.tensors:
        assert np.array_equal(ge.decode(t.data, t.tensor_type).reshape(exp[t.name].shape), exp[t.name]), t.name
    mf.xz(plain, ROOT / "tests/fixtures/models/tiny-a-mmproj-f16.gguf.xz")
    print(f"  tiny-a-mmproj-f16.gguf: {len(types)} tensors, decodes == f32 weights")
    return types


def main() -> None:
    import transformers
    VIS_DIR.mkdir(parents=True, exist_ok=True)
    hf = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
          "torchvision": __import__("torchvision").__version__.split("+")[0],
          "pillow": __import__("PIL").__version__, "attn_implementation": "eager", "dtype": "float32"}
    proc_info = {"class": "Qwen2VLImageProcessor (torchvision backend; AutoImageProcessor's choice for "
                          "qwen3_vl, legacy name Qwen2VLImageProcessorFast)",
                 "patch_size": PATCH, "merge_size": MERGE, "temporal_patch_size": TEMPORAL,
                 "image_mean": [0.5] * 3, "image_std": [0.5] * 3, "min_pixels": MIN_PIXELS,
                 "max_pixels": MAX_PIXELS, "resample": "BICUBIC", "antialias": True,
                 "do_convert_rgb": True, "rescale_factor": 1 / 255}

    print("preprocessing:", flush=True)
    entries, pils = preprocess_all()
    (VIS_DIR / "images.json").write_text(json.dumps(
        {"hf": hf, "processor": proc_info, "conversions": conversions_note(), "images": entries},
        separators=(",", ":")))
    (VIS_DIR / "smart_resize.json").write_text(json.dumps(smart_resize_cases(), separators=(",", ":")))

    print("model:", flush=True)
    model = mf.build_model(mf.SHAPES["tiny-a"])
    check_weights(model)
    enc = encoder_dumps(model, pils)
    vc = model.config.vision_config
    vcfg = {"depth": vc.depth, "hidden_size": vc.hidden_size, "num_heads": vc.num_heads,
            "intermediate_size": vc.intermediate_size, "out_hidden_size": vc.out_hidden_size,
            "num_position_embeddings": vc.num_position_embeddings,
            "deepstack_visual_indexes": list(vc.deepstack_visual_indexes), "hidden_act": vc.hidden_act}
    p = mf.write_json({"model": "tiny-a-mmproj-f32.gguf", "also_valid_for": "tiny-a-mmproj-f16.gguf",
                       "hf": hf, "vision_config": vcfg, "images": enc}, VIS_DIR / "encoder")
    print(f"  {p.name} {p.stat().st_size / 1e6:.2f} MB")
    columns, cases = prompt_dumps(model, pils)
    p = mf.write_json({"model": "tiny-a-f32.gguf", "mmproj": "tiny-a-mmproj-f32.gguf", "hf": hf,
                       "columns": columns, "cases": cases}, VIS_DIR / "prompts")
    print(f"  {p.name} {p.stat().st_size / 1e6:.2f} MB")
    mmproj_f16(model)


if __name__ == "__main__":
    main()
