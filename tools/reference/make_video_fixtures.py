#!/usr/bin/env python3
"""Video fixtures from transformers: frame sampling, timestamps, video smart_resize, a lossless test
video, its preprocessing + vision-encoder outputs, and video prompts on tiny-a.

Writes (relative to the repo root):
  tests/fixtures/video/lossless-112x72.mkv        FFV1 (bgr0) 112x72, 10 fps, 30 frames (ffmpeg CLI)
  tests/fixtures/video/sampling.json[.xz]         Qwen3VLVideoProcessor.sample_frames + prompt timestamps
  tests/fixtures/video/smart_resize.json          video smart_resize (n_frames, h, w) cases incl. errors
  tests/fixtures/video/video.json[.xz]            the test video: sampling, resize, pixel_values, encoder
  tests/fixtures/video/rgb/NAME.resized.rgb.xz    uint8 RGB of the sampled+resized frames [n][h][w][3]
  tests/fixtures/video/prompts.json[.xz]          tiny-a video prompts: ids, 3-axis positions, logits, greedy

Needs ffmpeg/ffprobe on PATH (apt-get install ffmpeg), the committed tiny-a-{f32,mmproj-f32}.gguf.xz,
and tests/fixtures/images/rgb-97x61.png.

    python tools/reference/make_video_fixtures.py      # ~1 min on 2 cores
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import make_fixtures as mf  # noqa: E402
import make_vision_fixtures as mv  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

VID_DIR = ROOT / "tests/fixtures/video"
RGB_DIR = VID_DIR / "rgb"
VIDEO_NAME = "lossless-112x72.mkv"
VW, VH, VFPS, VN = 112, 72, 10, 30

PATCH, MERGE, TEMPORAL = 16, 2, 2
FACTOR = PATCH * MERGE
# Qwen3-VL video_preprocessor_config.json (spec 4.1; the same values in several independent copies of
# the hub file: size, fps 2, min/max frames 4/768, mean/std 0.5, patch 16, merge 2, temporal 2).
VIDEO_MIN_PIXELS = 4096          # size.shortest_edge
VIDEO_MAX_PIXELS = 25165824      # size.longest_edge = 24576 * 32^2
CLASS_MIN_PIXELS = 128 * 32 * 32  # Qwen3VLVideoProcessor.size class default (not what the model uses)
CLASS_MAX_PIXELS = 768 * 32 * 32
N_GREEDY = 32
VIDEO_PAD, IMAGE_PAD = 151656, 151655

f32 = mf.f32
floats, nested, pv_stats, write_xz = mv.floats, mv.nested, mv.pv_stats, mv.write_xz


def video_processor(budget=None, **kw):
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    mn, mx = budget or (VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)
    # cap_pixels_per_frame=False == the 5.23 default (None -> warning -> False), set to silence the warning
    return Qwen3VLVideoProcessor(patch_size=PATCH, temporal_patch_size=TEMPORAL, merge_size=MERGE,
                                 image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                 size={"shortest_edge": mn, "longest_edge": mx},
                                 cap_pixels_per_frame=False, **kw)


def processor():
    from transformers import Qwen3VLProcessor
    import qwen3vl_vocab
    return Qwen3VLProcessor(image_processor=mv.image_processor(), tokenizer=qwen3vl_vocab.hf_tokenizer(),
                            video_processor=video_processor())


# ----------------------------------------------------------------------------------------------
# sampling.json

def sampling_pairs() -> list[tuple]:
    """(total_frames, video_fps or None, num_frames or None)."""
    ntsc = 30000 / 1001
    pairs = []
    for t in range(0, 11):                                    # short clips, incl. 0 and 1 frame
        for fps in (10, 30, None):
            pairs.append((t, fps, None))
    for fps in (24, 25, ntsc, 30, 60):                        # typical
        for d in (1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 30, 60, 90, 120, 300, 600):
            n = int(round(d * fps))
            pairs.append((n, fps, None))
            if d in (2.5, 10, 60, 300):
                pairs.append((n + 1, fps, None))
                pairs.append((n - 1, fps, None))
    for fps in (24, 25, ntsc, 30, 60):                        # long: 15 min .. 3 h
        for d in (900, 1800, 3600, 7200, 10800):
            pairs.append((int(round(d * fps)), fps, None))
    pairs += [(1152, 2.0 * 384, None), (1537, 1.0, None)]     # max_frames boundary
    for fps in (24000 / 1001, 60000 / 1001, 12.5, 7.5, 0.5, 1.0, 2.0, 3.0, 14.985, 5.5, 29.97, 23.976,
                15.0, 48.0, 120.0, 1.25, 0.1):                # fractional / unusual fps
        for d in (1.0, 3.3, 10.0, 61.7):
            pairs.append((max(1, int(d * fps)), fps, None))
    for t in (4, 7, 12, 24, 25, 47, 48, 49, 100, 240, 1000, 18432, 18433, 100000):   # fps unknown -> 24
        pairs.append((t, None, None))
    for t, fps in ((30, 10), (300, ntsc), (3, 30), (1, 30), (9, 24), (10000, 25), (100, None)):
        for nf in (1, 2, 3, 4, 5, 7, 8, 16, 31, 64):
            pairs.append((t, fps, nf))
    pairs += [(5000, 30, 768), (5000, 30, 1000), (0, 30, 4)]
    rng = np.random.default_rng(2024)
    fpss = [24, 25, ntsc, 30, 60, 24000 / 1001, 12.5, None]
    while len(pairs) < 320:
        pairs.append((int(rng.integers(2, 200000)), fpss[int(rng.integers(0, len(fpss)))], None))
    return pairs


def run_sampling(proc, vp, total, fps, nf) -> dict:
    """The processor's own code: vp.sample_frames (as preprocess() calls it) and
    Qwen3VLProcessor._calculate_timestamps / the '<%.1f seconds>' format of replace_video_token."""
    from transformers.video_utils import VideoMetadata
    c = {"total_frames": total, "video_fps": fps, "mode": "fps" if nf is None else "num_frames"}
    if nf is not None:
        c["num_frames"] = nf
    md = VideoMetadata(total_num_frames=total, fps=fps)
    try:
        # preprocess() fills fps=self.fps (2) unless the caller passes fps; num_frames requires fps=None
        idx = vp.sample_frames(metadata=md, num_frames=nf, fps=None if nf is not None else vp.fps)
    except Exception as ex:  # noqa: BLE001
        c["error"] = type(ex).__name__
        c["error_stage"] = "sample_frames"
        return c
    idx = [int(i) for i in idx]
    if len(idx) == 0:                                        # T = 0: linspace gives nothing
        c["error"] = "no frames"
        c["error_stage"] = "sample_frames"
        return c
    c["indices"] = idx
    c["n"] = len(idx)
    fps_used = 24 if md.fps is None else md.fps              # replace_video_token's rule
    c["fps_used"] = fps_used
    ts = proc._calculate_timestamps(list(idx), fps_used, proc.video_processor.temporal_patch_size)
    c["timestamps"] = [float(t) for t in ts]
    c["timestamp_text"] = [f"{t:.1f}" for t in ts]
    c["grid_t"] = (len(idx) + 1) // 2
    return c


def pipeline_check(proc, total, fps, nf, c) -> None:
    """Run the whole processor on a stride-0 dummy video of `total` 32x32 frames; compare indices and the
    timestamps parsed from the expanded prompt with the direct computation; record a processor error."""
    if total == 0:
        return
    vid = np.broadcast_to(np.zeros((1, 32, 32, 3), np.uint8), (total, 32, 32, 3))
    text = "<|vision_start|><|video_pad|><|vision_end|>"
    kw = {"num_frames": nf, "fps": None} if nf is not None else {}
    try:
        out = proc(text=[text], videos=[vid], video_metadata=[{"total_num_frames": total, "fps": fps}], **kw)
    except Exception as ex:  # noqa: BLE001
        if "error" not in c:
            c["error"] = type(ex).__name__
            c["error_stage"] = "processor"
            c["error_message"] = str(ex)
        return
    assert "error" not in c, c
    s = proc.tokenizer.decode(out["input_ids"][0])
    got = re.findall(r"<(\d+\.\d) seconds>", s)
    assert got == c["timestamp_text"], (total, fps, nf, got, c["timestamp_text"])
    assert out["video_grid_thw"][0][0] == c["grid_t"]


def sampling_fixture(proc) -> dict:
    vp = proc.video_processor
    cases = []
    for total, fps, nf in sampling_pairs():
        c = run_sampling(proc, vp, total, fps, nf)
        pipeline_check(proc, total, fps, nf, c)
        cases.append(c)
    # num_frames given while fps keeps its default (what processor(videos=..., num_frames=N) does)
    from transformers.video_utils import VideoMetadata
    try:
        vp.sample_frames(metadata=VideoMetadata(total_num_frames=30, fps=10), num_frames=5, fps=2)
        both = "ok"
    except Exception as ex:  # noqa: BLE001
        both = type(ex).__name__
    n_err = sum("error" in c for c in cases)
    print(f"  sampling: {len(cases)} cases ({n_err} errors), num_frames+fps -> {both}", flush=True)
    return {"function": "transformers.models.qwen3_vl.video_processing_qwen3_vl.Qwen3VLVideoProcessor.sample_frames "
                        "+ Qwen3VLProcessor._calculate_timestamps",
            "defaults": {"fps": vp.fps, "min_frames": vp.min_frames, "max_frames": vp.max_frames,
                         "unknown_fps": 24, "temporal_patch_size": TEMPORAL},
            "num_frames_with_default_fps": both,
            "cases": cases}


# ----------------------------------------------------------------------------------------------
# smart_resize.json (video)

def video_smart_resize_cases(vp) -> dict:
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize
    trip = []
    sizes = [(720, 1280), (1080, 1920), (2160, 3840), (480, 640), (358, 720), (72, 112), (64, 96), (48, 64),
             (224, 224), (1280, 720), (4320, 7680)]
    for n in (2, 3, 4, 5, 6, 20, 21, 64, 128, 767, 768):
        for h, w in sizes[:6]:
            trip.append((n, h, w))
    for h, w in sizes[6:]:
        trip += [(4, h, w), (768, h, w)]
    trip += [(1, 720, 1280), (0, 720, 1280), (1, 32, 32),                     # num_frames < 2 -> ValueError
             (4, 16, 16), (4, 31, 31), (4, 1, 1), (4, 10, 500), (4, 20, 4000), (4, 1, 200), (4, 1, 201),
             (4, 31, 6300), (4, 31, 6400), (4, 32, 6400), (4, 32, 6401), (8, 16, 48), (4, 0, 10),
             (4, 48, 80), (4, 80, 48), (4, 112, 80), (2, 16, 16), (3, 16, 16),
             (20, 720, 1280), (60, 1080, 1920), (768, 2160, 3840), (768, 1, 1), (768, 32, 32)]
    rng = np.random.default_rng(77)
    for _ in range(40):
        trip.append((int(rng.integers(2, 769)), int(rng.integers(8, 4000)), int(rng.integers(8, 4000))))
    cases = []

    def run(n, h, w, mn, mx, budget):
        c = {"num_frames": n, "h": h, "w": w, "min_pixels": mn, "max_pixels": mx, "budget": budget}
        try:
            rh, rw = smart_resize(n, h, w, temporal_factor=TEMPORAL, factor=FACTOR, min_pixels=mn, max_pixels=mx)
            c["result"] = [rh, rw]
        except Exception as ex:  # noqa: BLE001
            c["error"] = type(ex).__name__
        cases.append(c)
        return c
    for n, h, w in trip:
        run(n, h, w, VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS, "model")
    for n, h, w in [(4, 720, 1280), (20, 720, 1280), (768, 1080, 1920), (4, 64, 96), (6, 72, 112), (2, 2160, 3840)]:
        run(n, h, w, CLASS_MIN_PIXELS, CLASS_MAX_PIXELS, "class_default")
    # opt-in cap_pixels_per_frame (Qwen3VLVideoProcessor.resize): max_pixels replaced by
    # max(min(768*32^2, longest_edge // n), int(1.05*shortest_edge)) * n; cross-checked with
    # get_num_of_video_patches(cap_pixels_per_frame=True)
    for n, h, w in [(4, 720, 1280), (20, 720, 1280), (46, 720, 1280), (200, 1080, 1920), (768, 2160, 3840),
                    (6, 72, 112), (12, 768, 1344)]:
        per = max(min(768 * FACTOR * FACTOR, VIDEO_MAX_PIXELS // n), int(VIDEO_MIN_PIXELS * 1.05))
        c = run(n, h, w, VIDEO_MIN_PIXELS, per * n, "model+cap_pixels_per_frame")
        c["cap_pixels_per_frame"] = True
        c["pixels_per_frame"] = per
        rh, rw = c["result"]
        got = vp.get_num_of_video_patches(n, h, w, {"cap_pixels_per_frame": True})
        assert got == ((n + 1) // 2) * (rh // PATCH) * (rw // PATCH), (n, h, w, got)
    for c in cases:       # the processor's own patch count agrees where the budget is the model's
        if c["budget"] == "model" and "result" in c:
            rh, rw = c["result"]
            got = vp.get_num_of_video_patches(c["num_frames"], c["h"], c["w"])
            assert got == ((c["num_frames"] + 1) // 2) * (rh // PATCH) * (rw // PATCH)
    print(f"  video smart_resize: {len(cases)} cases ({sum('error' in c for c in cases)} errors)", flush=True)
    return {"function": "transformers.models.qwen3_vl.video_processing_qwen3_vl.smart_resize",
            "factor": FACTOR, "temporal_factor": TEMPORAL,
            "note": "result = [resized_h, resized_w]; error = Python exception class name; budget 'model' = "
                    "video_preprocessor_config.json size {shortest_edge 4096, longest_edge 25165824}",
            "cases": cases}


# ----------------------------------------------------------------------------------------------
# the lossless test video

def make_frames() -> np.ndarray:
    """[30][72][112][3] uint8: moving gradient, a rectangle, a disc, a frame-number bar code, noise."""
    rng = np.random.default_rng(31337)
    noise = rng.integers(0, 256, (VN, 12, 16, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:VH, 0:VW]
    out = np.zeros((VN, VH, VW, 3), np.uint8)
    for t in range(VN):
        f = np.zeros((VH, VW, 3), np.int32)
        f[..., 0] = (xx * 2 + t * 7) % 256
        f[..., 1] = (yy * 3 + t * 5) % 256
        f[..., 2] = ((xx + yy) * 2 + 128 - t * 4) % 256
        x0 = 4 + 3 * t                                                   # red rectangle moving right
        f[10:30, x0 % (VW - 16):x0 % (VW - 16) + 16] = (230, 20, 20)
        cy, cx = 50 - t, 20 + 2 * t                                      # white disc moving up-right
        f[(yy - cy) ** 2 + (xx - cx) ** 2 <= 49] = (250, 250, 250)
        for b in range(5):                                               # frame number, 5-bit bar code
            f[VH - 6:VH, 4 + b * 6:8 + b * 6] = 255 if (t >> b) & 1 else 0
        f[2:14, VW - 18:VW - 2] = noise[t]                               # seeded noise patch
        f[40:44, 60:100] = (t * 8, 255 - t * 8, 128)                     # colour ramp over time
        out[t] = f.astype(np.uint8)
    return out


def ffmpeg_encode(frames: np.ndarray, path: Path) -> None:
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{VW}x{VH}",
           "-r", str(VFPS), "-i", "-", "-an", "-c:v", "ffv1", "-level", "3", "-g", "1", "-pix_fmt", "bgr0",
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)


def ffmpeg_decode(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, VH, VW, 3)


def ffprobe(path: Path) -> dict:
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=codec_name,pix_fmt,width,height,r_frame_rate,avg_frame_rate,nb_read_frames",
                        "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(r)["streams"][0]


SAMPLINGS = [("default", {}), ("num_frames_5", {"num_frames": 5, "fps": None})]


@torch.no_grad()
def video_dumps(model, frames: np.ndarray) -> tuple[list, dict]:
    from transformers.image_utils import PILImageResampling, SizeDict
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize
    vp = video_processor()
    RGB_DIR.mkdir(parents=True, exist_ok=True)
    for old in RGB_DIR.iterdir():
        old.unlink()
    entries, inputs = [], {}
    for name, kw in SAMPLINGS:
        out = vp(frames, video_metadata={"fps": VFPS, "total_num_frames": VN}, return_metadata=True,
                 return_tensors="pt", **kw)
        md = out["video_metadata"][0]
        idx = [int(i) for i in md.frames_indices]
        pv, thw = out["pixel_values_videos"], out["video_grid_thw"]
        n = len(idx)
        rh, rw = smart_resize(n, VH, VW, temporal_factor=TEMPORAL, factor=FACTOR,
                              min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS)
        # the resize exactly as the processor does it: [1, n, 3, H, W] uint8 -> torchvision bicubic AA
        t = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).contiguous()[None]
        rs = vp.resize(t, size=SizeDict(shortest_edge=VIDEO_MIN_PIXELS, longest_edge=VIDEO_MAX_PIXELS),
                       resample=PILImageResampling.BICUBIC, factor=FACTOR, temporal_factor=TEMPORAL,
                       cap_pixels_per_frame=False)
        assert tuple(rs.shape) == (1, n, 3, rh, rw), rs.shape
        x = (rs.float() - 127.5) / 127.5
        p, gt, gh, gw = vp.patchify(x, PATCH, MERGE, TEMPORAL)
        assert np.array_equal(p[0].numpy(), pv.numpy()), name
        assert thw[0].tolist() == [gt, gh, gw] == [(n + 1) // 2, rh // PATCH, rw // PATCH]
        # odd count: patchify repeats the last (resized, normalized) frame; check it explicitly
        if n % 2:
            xp = torch.cat([x, x[:, -1:]], 1)
            p2, *_ = vp.patchify(xp, PATCH, MERGE, TEMPORAL)
            assert np.array_equal(p2[0].numpy(), pv.numpy())
        resized = rs[0].permute(0, 2, 3, 1).contiguous().numpy()    # [n, rh, rw, 3]
        write_xz(RGB_DIR / f"{name}.resized.rgb.xz", resized.tobytes())
        padded = idx + [idx[-1]] * (n % 2)
        proc_ts = processor()._calculate_timestamps(list(idx), VFPS, TEMPORAL)
        vo = model.model.get_video_features(pv, thw)
        main = vo.pooler_output[0].numpy()
        ds = [f[0].numpy() for f in vo.deepstack_features]
        # each temporal group encoded alone as a 1-group "video" gives the same rows (attention per group)
        per = pv.shape[0] // gt
        maxdiff = 0.0
        for g in range(gt):
            vg = model.model.get_video_features(pv[g * per:(g + 1) * per], torch.tensor([[1, gh, gw]]))
            tok = per // 4
            maxdiff = max(maxdiff, float((vg.pooler_output[0] - vo.pooler_output[0][g * tok:(g + 1) * tok]).abs().max()))
        e = {"name": name, "sampling_kwargs": {k: v for k, v in kw.items()},
             "indices": idx, "n_frames": n, "padded_indices": padded,
             "timestamps": [float(v) for v in proc_ts], "timestamp_text": [f"{v:.1f}" for v in proc_ts],
             "resized": [rw, rh], "video_grid_thw": thw[0].tolist(), "tokens_per_group": gh * gw // 4,
             "n_tokens": int(main.shape[0]),
             "resized_rgb": f"video/rgb/{name}.resized.rgb", "resized_shape": list(resized.shape),
             "resized_sha256": hashlib.sha256(resized.tobytes()).hexdigest(),
             "resized_sum": int(resized.astype(np.int64).sum()),
             "pixel_values": pv_stats(pv.numpy()),
             "encoder": {"main": nested(main), "deepstack": [nested(d) for d in ds],
                         "last_hidden_state_sum": float(vo.last_hidden_state.double().sum()),
                         "per_group_alone_maxdiff": maxdiff}}
        entries.append(e)
        inputs[name] = (kw, out)
        print(f"  video {name}: indices {idx} ts {e['timestamp_text']} resized {rw}x{rh} grid {thw[0].tolist()} "
              f"per-group diff {maxdiff:.2e}", flush=True)
    return entries, inputs


# ----------------------------------------------------------------------------------------------
# prompts

VTEXT = ("<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Describe this video.<|im_end|>\n"
         "<|im_start|>assistant\n")
ITEXT = ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|video_pad|>"
         "<|vision_end|>Describe this image and this video.<|im_end|>\n<|im_start|>assistant\n")
PROMPTS = [("video", "default", None, VTEXT), ("video_num_frames_5", "num_frames_5", None, VTEXT),
           ("image_video", "default", "rgb-97x61", ITEXT)]


def spec_positions(ids: list[int], image_grids: list, video_grids: list) -> list:
    """Spec 6.3 walk, each video temporal group a separate (1, gh, gw) block."""
    blocks = {IMAGE_PAD: iter([g for g in image_grids]),
              VIDEO_PAD: iter([[1, h, w] for t, h, w in video_grids for _ in range(t)])}
    out, nxt, i = [[], [], []], 0, 0
    while i < len(ids):
        if ids[i] in blocks:
            _, gh, gw = next(blocks[ids[i]])
            hm, wm = gh // MERGE, gw // MERGE
            assert ids[i:i + hm * wm] == [ids[i]] * (hm * wm)
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
def prompt_dumps(model, frames) -> tuple[list, list]:
    from transformers.image_utils import load_image
    proc = processor()
    tok = proc.tokenizer
    cases, all_logits = [], []
    for cname, sampling, img, text in PROMPTS:
        kw = dict(SAMPLINGS)[sampling]
        images = [load_image(str(ROOT / "tests/fixtures/images" / f"{img}.png"))] if img else None
        inp = proc(text=[text], images=images, videos=[frames],
                   video_metadata=[{"fps": VFPS, "total_num_frames": VN}], return_tensors="pt", **kw)
        inp.pop("video_metadata", None)
        ids = inp["input_ids"]
        igrid = inp.get("image_grid_thw")
        pos, delta = model.model.get_rope_index(ids, image_grid_thw=igrid, video_grid_thw=inp["video_grid_thw"],
                                                attention_mask=inp["attention_mask"],
                                                mm_token_type_ids=inp["mm_token_type_ids"])
        model.model.rope_deltas = None
        lg = model(**inp, use_cache=False).logits[0].float().numpy()
        model.model.rope_deltas = None
        g = model.generate(**inp, do_sample=False, max_new_tokens=N_GREEDY, min_new_tokens=N_GREEDY,
                           eos_token_id=None, pad_token_id=151643, temperature=None, top_p=None, top_k=None,
                           repetition_penalty=None)
        gen = g[0, ids.shape[1]:].tolist()
        assert len(gen) == N_GREEDY
        model.model.rope_deltas = None
        full = torch.cat([ids, torch.tensor([gen[:-1]])], 1)
        mm = torch.cat([inp["mm_token_type_ids"],
                        torch.zeros(1, N_GREEDY - 1, dtype=inp["mm_token_type_ids"].dtype)], 1)
        extra = {k: inp[k] for k in ("pixel_values", "image_grid_thw") if k in inp}
        chk = model(input_ids=full, attention_mask=torch.ones_like(full), mm_token_type_ids=mm, use_cache=False,
                    pixel_values_videos=inp["pixel_values_videos"], video_grid_thw=inp["video_grid_thw"],
                    **extra).logits[0]
        chk = chk[ids.shape[1] - 1:].argmax(-1).tolist()
        agree = sum(int(a == b) for a, b in zip(chk, gen))
        if agree != N_GREEDY:
            print(f"  note: {cname}: greedy vs recompute argmax agree {agree}/{N_GREEDY}")
        model.model.rope_deltas = None
        idl = ids[0].tolist()
        vgrid = inp["video_grid_thw"].tolist()
        ig = igrid.tolist() if igrid is not None else []
        assert pos[:, 0, :].tolist() == spec_positions(idl, ig, vgrid), cname
        expanded = tok.decode(idl)
        assert tok(expanded, add_special_tokens=False)["input_ids"] == idl
        ts = re.findall(r"<(\d+\.\d) seconds>", expanded)
        case = {"name": cname, "text": text, "sampling": sampling, "video": VIDEO_NAME,
                "images": [img] if img else [], "image_grid_thw": ig, "video_grid_thw": vgrid,
                "timestamp_text": ts, "expanded_text": expanded,
                "ids": idl, "position_ids": pos[:, 0, :].tolist(), "rope_delta": int(delta[0]),
                "greedy": gen, "greedy_recompute_agree": agree}
        cases.append(case)
        all_logits.append(lg)
        print(f"  prompt {cname}: {len(idl)} ids, delta {int(delta[0])}, ts {ts}, greedy {gen[:8]}...", flush=True)
    cols = set(range(128))
    for case, lg in zip(cases, all_logits):
        cols.update(case["ids"])
        cols.update(case["greedy"])
        cols.update(np.argsort(-lg, axis=1)[:, :8].ravel().tolist())
    rng = np.random.default_rng(4322)
    cols.update(rng.integers(0, mf.VOCAB, mf.N_RANDOM_COLUMNS).tolist())
    while len(cols) < mf.N_COLUMNS:
        cols.add(int(rng.integers(0, mf.VOCAB)))
    columns = sorted(int(c) for c in cols)
    cidx = np.array(columns)
    for case, lg in zip(cases, all_logits):
        case["logits"] = [[f32(v) for v in row[cidx]] for row in lg]
        case["stats"] = [mf.row_stats(row) for row in lg]
    return columns, cases


# ----------------------------------------------------------------------------------------------

def main() -> None:
    import transformers
    VID_DIR.mkdir(parents=True, exist_ok=True)
    hf = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
          "torchvision": __import__("torchvision").__version__.split("+")[0],
          "attn_implementation": "eager", "dtype": "float32"}
    vp = video_processor()
    proc_info = {"class": "Qwen3VLVideoProcessor (torchvision backend)", "patch_size": PATCH, "merge_size": MERGE,
                 "temporal_patch_size": TEMPORAL, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
                 "min_pixels": VIDEO_MIN_PIXELS, "max_pixels": VIDEO_MAX_PIXELS,
                 "size_source": "video_preprocessor_config.json of the Qwen3-VL checkpoints (class default "
                                "would be {131072, 786432})",
                 "fps": vp.fps, "min_frames": vp.min_frames, "max_frames": vp.max_frames,
                 "cap_pixels_per_frame": False, "resample": "BICUBIC", "antialias": True,
                 "rescale_factor": 1 / 255}

    print("sampling / smart_resize:", flush=True)
    proc = processor()
    p = mf.write_json({"hf": hf, "processor": proc_info, **sampling_fixture(proc)}, VID_DIR / "sampling")
    print(f"  {p.name} {p.stat().st_size / 1e6:.2f} MB")
    (VID_DIR / "smart_resize.json").write_text(json.dumps(video_smart_resize_cases(vp), separators=(",", ":")))

    print("video:", flush=True)
    frames = make_frames()
    vpath = VID_DIR / VIDEO_NAME
    ffmpeg_encode(frames, vpath)
    dec = ffmpeg_decode(vpath)
    assert np.array_equal(dec, frames), "lossless round trip failed"
    probe = ffprobe(vpath)
    print(f"  {VIDEO_NAME}: {vpath.stat().st_size} bytes, {probe}", flush=True)

    print("model:", flush=True)
    model = mf.build_model(mf.SHAPES["tiny-a"])
    mv.check_weights(model)
    entries, _ = video_dumps(model, dec)
    vinfo = {"file": f"tests/fixtures/video/{VIDEO_NAME}", "file_sha256": hashlib.sha256(vpath.read_bytes()).hexdigest(),
             "ffprobe": probe, "width": VW, "height": VH, "fps": VFPS, "total_num_frames": VN,
             "decode": "ffmpeg -i FILE -f rawvideo -pix_fmt rgb24 - (exact: lossless RGB)",
             "frames_sha256": hashlib.sha256(dec.tobytes()).hexdigest(),
             "frame_sha256": [hashlib.sha256(f.tobytes()).hexdigest() for f in dec],
             "frame_sum": [int(f.astype(np.int64).sum()) for f in dec],
             "metadata": {"fps": VFPS, "total_num_frames": VN}}
    vc = model.config.vision_config
    p = mf.write_json({"model": "tiny-a-mmproj-f32.gguf", "also_valid_for": "tiny-a-mmproj-f16.gguf", "hf": hf,
                       "processor": proc_info, "video": vinfo,
                       "vision_config": {"depth": vc.depth, "hidden_size": vc.hidden_size,
                                         "out_hidden_size": vc.out_hidden_size,
                                         "deepstack_visual_indexes": list(vc.deepstack_visual_indexes)},
                       "samplings": entries}, VID_DIR / "video")
    print(f"  {p.name} {p.stat().st_size / 1e6:.2f} MB")
    columns, cases = prompt_dumps(model, dec)
    p = mf.write_json({"model": "tiny-a-f32.gguf", "mmproj": "tiny-a-mmproj-f32.gguf", "hf": hf,
                       "processor": proc_info, "columns": columns, "cases": cases}, VID_DIR / "prompts")
    print(f"  {p.name} {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
