#!/usr/bin/env python3
"""Reel and llama.cpp side by side on the same GGUF files and thread count (not part of CI).

  python3 bench/llama_side_by_side.py --reel build/reel -t 2 \
      --models models/bench/2b-q8_0.gguf,models/bench/2b-q4_k_m.gguf \
      --mmproj models/bench/2b-mmproj-f16.gguf -p 512 -d 4096

llama.cpp is the build inside llama-cpp-python (pinned below), compiled from source into its own
virtual environment, bench/.venv (git-ignored), on the first run: a native Release build, about
25-45 minutes on two shared cores (`--setup` only builds it). The script then re-runs itself with
that environment's Python.

Each figure is measured interleaved: for every measurement and repetition, one Reel run (a
`reel bench --json -r 1` process) and then one llama.cpp run (in this process, the model loaded
once per file), so both see the same machine state; best and median of the repetitions are
reported, and ratios only from these side-by-side runs. Measurements:
  prefill P:  the whole P-token prompt from an empty cache (tokens/s);
  decode D:   N tokens one at a time with D tokens already cached (tokens/s), D = 0 and each -d;
  vision:     the encoder on one WxH image (default 448x448), resize excluded on both sides;
  video F:    with --video CLIP: time to first token for a question about F evenly spaced frames
              of the clip (the frames Reel samples, `reel frames --frames F`), both engines
              taking them as Qwen3-VL does, two frames per temporal patch (llama.cpp: the frames
              as mergeable bitmaps, libmtmd's temporal merge, the pair's timestamp before it),
              and decode tokens/s after that prompt. Reel's time includes reading the frames
              from the file; llama.cpp gets them already decoded (ffmpeg, outside the timing).
The prompt tokens are the same ordinary ids on both sides; llama.cpp decodes a fixed token (no
sampling), Reel samples greedily (negligible). The KV cache is f16 on both (their defaults);
llama.cpp runs with n_batch = n_ubatch = 512 and flash attention off (llama-cpp-python's
default; --flash-attn turns it on), Reel with its defaults (-b 256).
The machine's memory bandwidth and FP32 FMA peak are the ones `reel bench` measured in the same
runs (best over them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
VENV_PY = VENV / "bin" / "python"
# Native (this CPU's instruction set) Release build of the bundled llama.cpp, CPU only.
CMAKE_ARGS = ("-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF "
              "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF")


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> None:
    """Creates bench/.venv with the pinned llama-cpp-python built from source, once."""
    if VENV_PY.exists():
        check = subprocess.run([str(VENV_PY), "-c", "import llama_cpp"], capture_output=True)
        if check.returncode == 0:
            return
    else:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS,
               CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    print(f"building {LLAMA_CPP_PYTHON} from source into {VENV} (CMAKE_ARGS={CMAKE_ARGS}); "
          "this takes a while", file=sys.stderr)
    t0 = time.time()
    subprocess.run([str(VENV_PY), "-m", "pip", "install", "--no-binary", "llama-cpp-python",
                    LLAMA_CPP_PYTHON], check=True, env=env)
    print(f"built in {(time.time() - t0) / 60:.1f} min", file=sys.stderr)


def int_list(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def bench_prompt(n: int, n_vocab: int) -> list[int]:
    """The ids `reel bench` uses (src/pipeline/bench.cpp bench_prompt): ordinary text tokens."""
    usable = min(n_vocab, 150000)
    return [(1000 + 7919 * i) % usable for i in range(n)]


# --- Reel ---------------------------------------------------------------------------------

def reel_json(args, extra: list[str]) -> list[dict]:
    cmd = [args.reel, "bench", "-t", str(args.threads), "-r", "1", "--json", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


class Peaks:
    """The probes of every Reel run: their best, and the range (how quiet the machine was)."""

    def __init__(self):
        self.bandwidths: list[float] = []
        self.fmas: list[float] = []

    def see(self, rows: list[dict]) -> None:
        for r in rows[:1]:  # one probe per run, repeated on each of its rows
            if r.get("bandwidth_gbs"):
                self.bandwidths.append(r["bandwidth_gbs"])
            if r.get("fma_gflops"):
                self.fmas.append(r["fma_gflops"])

    def describe(self) -> str:
        def one(xs, unit):
            return f"{max(xs):.1f} {unit} (runs {min(xs):.1f} to {max(xs):.1f})" if xs else "–"
        return (f"memory bandwidth {one(self.bandwidths, 'GB/s')}, "
                f"FP32 FMA peak {one(self.fmas, 'GFLOP/s')}")


def reel_prefill(args, model: str, n: int, peaks: Peaks) -> float:
    # -d 0 -n 1: no decode after the prompt beyond one cheap token.
    rows = reel_json(args, ["-m", model, "-p", str(n), "-d", "0", "-n", "1"])
    peaks.see(rows)
    return next(r["tokens_per_s"] for r in rows if r["what"] == "prefill")


def reel_decode(args, model: str, depth: int, peaks: Peaks) -> tuple[float, float]:
    rows = reel_json(args, ["-m", model, "-p", "1", "-d", str(depth), "-n", str(args.n_gen)])
    peaks.see(rows)
    r = next(r for r in rows if r["what"] == "decode")
    return r["tokens_per_s"], r["roofline_at_depth_tokens_per_s"]


def reel_vision(args, size: str, peaks: Peaks, precision: str = "f32") -> tuple[float, int]:
    rows = reel_json(args, ["--mmproj", args.mmproj, "--image-size", size,
                            "--vision-precision", precision])
    peaks.see(rows)
    return rows[0]["encode_ms"] / 1e3, rows[0]["n_prompt"]


def reel_video(args, model: str, frames: int) -> dict:
    """One answer about the clip through the CLI; its --stats json line."""
    cmd = [args.reel, "-m", model, "--mmproj", args.mmproj, "--video", args.video, "--frames",
           str(frames), "-p", VIDEO_QUESTION, "-n", str(args.n_gen), "--temp", "0", "-t",
           str(args.threads), "-c", str(video_ctx(frames)), "--stats", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    stats = [ln for ln in out.stdout.splitlines() + out.stderr.splitlines()
             if ln.startswith("{") and "time_to_first_token_ms" in ln]
    if not stats:
        sys.exit(f"{' '.join(cmd)}: no stats line")
    return json.loads(stats[-1])


VIDEO_QUESTION = "Describe the video."


def video_ctx(frames: int) -> int:
    """Room for the frames as llama.cpp tokenizes them (up to ~300 tokens a frame)."""
    return max(4096, 320 * frames + 256)


def sampled_frames(args, frames: int) -> tuple[list[bytes], int, int, list[str]]:
    """The frames Reel samples (indices from `reel frames`), decoded to RGB by ffmpeg at the
    clip's size, and the timestamps Reel puts before each pair."""
    plan = json.loads(subprocess.run([args.reel, "frames", args.video, "--frames", str(frames)],
                                     capture_output=True, text=True, check=True).stdout)
    w, h = plan["video"]["width"], plan["video"]["height"]
    select = "+".join(f"eq(n\\,{i})" for i in plan["indices"])
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", args.video, "-vf",
                          f"select={select}", "-vsync", "0", "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True).stdout
    size = w * h * 3
    if len(raw) != size * len(plan["indices"]):
        raise RuntimeError(f"ffmpeg gave {len(raw)} bytes for {len(plan['indices'])} frames")
    return ([raw[i * size:(i + 1) * size] for i in range(len(plan["indices"]))], w, h,
            plan["group_timestamps"])


# --- llama.cpp ----------------------------------------------------------------------------

class LlamaText:
    def __init__(self, path: str, threads: int, n_ctx: int, flash_attn: bool):
        from llama_cpp import Llama
        self.llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                         n_ctx=n_ctx, n_batch=512, n_ubatch=512, flash_attn=flash_attn,
                         verbose=False)
        self.n_vocab = self.llm.n_vocab()

    def prefill(self, n: int) -> float:
        ids = bench_prompt(n, self.n_vocab)
        self.llm.reset()  # the next eval drops the cache from position 0
        t0 = time.perf_counter()
        self.llm.eval(ids)
        return n / (time.perf_counter() - t0)

    def decode(self, depth: int, n_gen: int) -> float:
        ids = bench_prompt(depth + 1, self.n_vocab)
        self.llm.reset()  # the next eval drops the cache from position 0
        if depth:
            self.llm.eval(ids[:depth])  # untimed: the context
        t0 = time.perf_counter()
        for _ in range(n_gen):
            self.llm.eval([ids[depth]])
        return n_gen / (time.perf_counter() - t0)


class LlamaVision:
    """The encoder alone through libmtmd: the image is preprocessed (resized, patched) by
    mtmd_tokenize outside the timing, then mtmd_encode_chunk is timed, as Reel's encode_ms."""

    def __init__(self, text: LlamaText, mmproj: str, threads: int):
        from llama_cpp import mtmd_cpp as m
        self.m = m
        p = m.mtmd_context_params_default()
        p.use_gpu = False
        p.n_threads = threads
        p.print_timings = False
        p.warmup = False
        self.ctx = m.mtmd_init_from_file(mmproj.encode(), text.llm.model, p)
        if not self.ctx:
            raise RuntimeError(f"libmtmd could not load {mmproj}")

    def encode(self, width: int, height: int) -> tuple[float, int]:
        import ctypes
        m = self.m
        # The same synthetic pixels as Reel's vision bench (src/pipeline/bench.cpp).
        data = bytearray(width * height * 3)
        for y in range(height):
            for x in range(width):
                base = (y * width + x) * 3
                for c in range(3):
                    data[base + c] = (x * 7 + y * 3 + c * 50) & 255
        buf = (ctypes.c_uint8 * len(data)).from_buffer(data)
        bitmap = m.mtmd_bitmap_init(width, height, buf)
        chunks = m.mtmd_input_chunks_init()
        text = m.mtmd_input_text()
        marker = m.mtmd_default_marker()
        text.text = marker
        text.text_len = len(marker)
        text.add_special = False
        text.parse_special = True
        bitmaps = (m.mtmd_bitmap_p_ctypes * 1)(bitmap)
        if m.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), bitmaps, 1) != 0:
            raise RuntimeError("mtmd_tokenize failed")
        try:
            for i in range(m.mtmd_input_chunks_size(chunks)):
                chunk = m.mtmd_input_chunks_get(chunks, i)
                if m.mtmd_input_chunk_get_type(chunk) != m.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    continue
                n_tokens = m.mtmd_input_chunk_get_n_tokens(chunk)
                t0 = time.perf_counter()
                if m.mtmd_encode_chunk(self.ctx, chunk) != 0:
                    raise RuntimeError("mtmd_encode_chunk failed")
                return time.perf_counter() - t0, n_tokens
            raise RuntimeError("no image chunk")
        finally:
            m.mtmd_input_chunks_free(chunks)
            m.mtmd_bitmap_free(bitmap)


class LlamaVideo:
    """Frames as mergeable bitmaps: libmtmd merges each adjacent pair into one temporal patch
    (Qwen3-VL's video input). Timed: mtmd_tokenize (resize, patches) and
    mtmd_helper_eval_chunks (encoder and prefill, logits of the last token)."""

    def __init__(self, text: LlamaText, vision: LlamaVision):
        self.text, self.m, self.ctx = text, vision.m, vision.ctx

    def ttft(self, frames: list[bytes], w: int, h: int, stamps: list[str],
             n_gen: int) -> tuple[float, float, int]:
        import ctypes
        from llama_cpp import llama_cpp as lc
        m, llm = self.m, self.text.llm
        marker = m.mtmd_default_marker().decode()
        pairs = "".join(f"{stamps[i // 2]}{marker}" if i % 2 == 0 else marker
                        for i in range(len(frames)))
        # libmtmd puts <|vision_start|> and <|vision_end|> around each merged pair itself.
        prompt = (f"<|im_start|>user\n{pairs}{VIDEO_QUESTION}<|im_end|>\n"
                  "<|im_start|>assistant\n")
        keep = [(ctypes.c_uint8 * len(f)).from_buffer_copy(f) for f in frames]
        bitmaps = [m.mtmd_bitmap_init(w, h, b) for b in keep]
        for b in bitmaps:
            m.mtmd_bitmap_set_mergeable(b, True)
        arr = (m.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
        text = m.mtmd_input_text()
        enc = prompt.encode()
        text.text, text.text_len, text.add_special, text.parse_special = enc, len(enc), False, True
        chunks = m.mtmd_input_chunks_init()
        llm.reset()
        llm._ctx.kv_cache_clear()
        try:
            t0 = time.perf_counter()
            if m.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), arr, len(bitmaps)) != 0:
                raise RuntimeError("mtmd_tokenize failed")
            n_past = lc.llama_pos(0)
            if m.mtmd_helper_eval_chunks(self.ctx, llm.ctx, chunks, 0, 0, 512, True,
                                         ctypes.byref(n_past)) != 0:
                raise RuntimeError("mtmd_helper_eval_chunks failed")
            ttft = time.perf_counter() - t0
            n_tokens = m.mtmd_helper_get_n_tokens(chunks)
        finally:
            m.mtmd_input_chunks_free(chunks)
            for b in bitmaps:
                m.mtmd_bitmap_free(b)
        # Decode after the prompt: a fixed token, one at a time, from the prompt's end.
        llm.n_tokens = n_past.value
        token = bench_prompt(1, self.text.n_vocab)[0]
        t0 = time.perf_counter()
        for _ in range(n_gen):
            llm.eval([token])
        return ttft, n_gen / (time.perf_counter() - t0), n_tokens


# --- the table ----------------------------------------------------------------------------

class Row:
    def __init__(self, figure: str, unit: str, higher_is_better: bool = True):
        self.figure, self.unit, self.higher = figure, unit, higher_is_better
        self.reel: list[float] = []
        self.llama: list[float] = []
        self.note = ""

    def best(self, xs: list[float]) -> float:
        return max(xs) if self.higher else min(xs)

    def cells(self) -> list[str]:
        def fmt(xs):
            if not xs:
                return "–"
            return f"{self.best(xs):.2f} ({statistics.median(xs):.2f})"
        ratio = "–"
        if self.reel and self.llama:
            b = self.best(self.reel) / self.best(self.llama)
            med = statistics.median(self.reel) / statistics.median(self.llama)
            if not self.higher:  # times: how many times faster Reel is
                b, med = 1 / b, 1 / med
            ratio = f"{b:.2f} ({med:.2f})"
        return [f"{self.figure}, {self.unit}" + (f" {self.note}" if self.note else ""),
                fmt(self.reel), fmt(self.llama), ratio]


def print_table(rows: list[Row], args, peaks: Peaks) -> None:
    print()
    print(f"Reel vs llama.cpp ({LLAMA_CPP_PYTHON}, flash attention "
          f"{'on' if args.flash_attn else 'off'}), {args.threads} threads, {args.n_gen} decoded "
          f"tokens, best (median) of {args.reps}, interleaved, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"Measured by reel bench in the same runs: {peaks.describe()}. Ratio: Reel over "
          "llama.cpp (times: how many times faster Reel is).")
    print()
    print("| figure | Reel | llama.cpp | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r.cells()) + " |")


def run(args) -> None:
    peaks = Peaks()
    rows: list[Row] = []
    depths = sorted(set([0] + args.depths))
    n_ctx = max(args.prompts + [d + 1 + args.n_gen for d in depths]) + 16
    if args.video:
        n_ctx = max([n_ctx] + [video_ctx(f) for f in args.video_frames])
    for model in args.models:
        name = Path(model).name
        print(f"loading {name} into llama.cpp (n_ctx {n_ctx})", file=sys.stderr)
        text = LlamaText(model, args.threads, n_ctx, args.flash_attn)
        for n in args.prompts:
            row = Row(f"{name} prefill {n}", "tok/s")
            rows.append(row)
            for rep in range(args.reps):
                row.reel.append(reel_prefill(args, model, n, peaks))
                row.llama.append(text.prefill(n))
                print(f"  {row.figure} rep {rep + 1}: Reel {row.reel[-1]:.2f}, "
                      f"llama.cpp {row.llama[-1]:.2f}", file=sys.stderr)
        for d in depths:
            row = Row(f"{name} decode at depth {d}", "tok/s")
            rows.append(row)
            rooflines = []
            for rep in range(args.reps):
                tps, roofline = reel_decode(args, model, d, peaks)
                row.reel.append(tps)
                rooflines.append(roofline)
                row.llama.append(text.decode(d, args.n_gen))
                print(f"  {row.figure} rep {rep + 1}: Reel {tps:.2f}, "
                      f"llama.cpp {row.llama[-1]:.2f}", file=sys.stderr)
            # The best run over the highest roofline of the sitting (the best bandwidth probe):
            # a run's own fraction overstates it when its probe was disturbed (on a shared host
            # one run's probe read half the bandwidth and gave 121%).
            row.note = f"(Reel {100 * max(row.reel) / max(rooflines):.0f}% of its roofline)"
        if args.mmproj and model == args.models[0] and not args.no_vision:
            rows.extend(vision_row(args, text, peaks))
        if args.video and model == args.models[0]:
            rows.extend(video_rows(args, model, text))
        del text
    print_table(rows, args, peaks)


def vision_row(args, text: LlamaText, peaks: Peaks) -> list[Row]:
    w, h = (int(x) for x in args.image_size.lower().split("x"))
    row = Row(f"vision encode {args.image_size}", "s", higher_is_better=False)
    # --int16-vision: Reel's --vision-precision int16 too, in the same repetitions, against the
    # same llama.cpp runs.
    row16 = (Row(f"vision encode {args.image_size}, Reel --vision-precision int16", "s",
                 higher_is_better=False) if args.int16_vision else None)
    try:
        vision = LlamaVision(text, args.mmproj, args.threads)
    except Exception as e:  # noqa: BLE001 - reported in the table, the rest still runs
        row.note = f"(llama.cpp side skipped: {e})"
        vision = None
    for rep in range(args.reps):
        s, n_reel = reel_vision(args, args.image_size, peaks)
        row.reel.append(s)
        if row16:
            row16.reel.append(reel_vision(args, args.image_size, peaks, "int16")[0])
        if vision:
            try:
                s_llama, n_llama = vision.encode(w, h)
            except Exception as e:  # noqa: BLE001 - reported in the table
                row.note = f"(llama.cpp side failed: {e})"
                vision = None
            else:
                row.llama.append(s_llama)
                row.note = f"({n_reel} / {n_llama} visual tokens)"
                if row16:
                    row16.llama.append(s_llama)
                    row16.note = row.note
        print(f"  {row.figure} rep {rep + 1}: Reel {row.reel[-1]:.2f} s"
              + (f" (int16 {row16.reel[-1]:.2f} s)" if row16 else "")
              + (f", llama.cpp {row.llama[-1]:.2f} s" if vision else ""), file=sys.stderr)
    return [row] + ([row16] if row16 else [])


def video_rows(args, model: str, text: LlamaText) -> list[Row]:
    """Time to first token and decode after the prompt, for each --video-frames count (the
    llama.cpp context was made with room for them)."""
    video = LlamaVideo(text, LlamaVision(text, args.mmproj, args.threads))
    rows = []
    for frames in args.video_frames:
        pictures, w, h, stamps = sampled_frames(args, frames)
        first = Row(f"time to first token, {frames} frames", "s", higher_is_better=False)
        after = Row(f"decode after the {frames}-frame prompt", "tok/s")
        for rep in range(args.reps):
            st = reel_video(args, model, frames)
            first.reel.append(st["time_to_first_token_ms"] / 1e3)
            after.reel.append(st["decode_tps"])
            s, tps, n_llama = video.ttft(pictures, w, h, stamps, args.n_gen)
            first.llama.append(s)
            after.llama.append(tps)
            first.note = (f"({st['prompt_tokens']} / {n_llama} prompt tokens, "
                          f"{w}x{h} clip {Path(args.video).name})")
            print(f"  {first.figure} rep {rep + 1}: Reel {first.reel[-1]:.2f} s "
                  f"({after.reel[-1]:.2f} tok/s after), llama.cpp {s:.2f} s ({tps:.2f} tok/s)",
                  file=sys.stderr)
        rows += [first, after]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reel", default=str(HERE.parent / "build" / "reel"))
    ap.add_argument("--models", default="models/bench/2b-q8_0.gguf,models/bench/2b-q4_k_m.gguf",
                    help="text GGUFs, comma-separated")
    ap.add_argument("--mmproj", default="models/bench/2b-mmproj-f16.gguf",
                    help="vision GGUF for the encode row ('' to skip)")
    ap.add_argument("--no-vision", action="store_true")
    ap.add_argument("--image-size", default="448x448")
    ap.add_argument("--int16-vision", action="store_true",
                    help="also Reel's vision encoder with --vision-precision int16 (its own row)")
    ap.add_argument("--video", default="", help="a clip for the time-to-first-token rows")
    ap.add_argument("--video-frames", type=int_list, default=[8, 20],
                    help="frames taken from --video, one row each")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--prompts", type=int_list, default=[512])
    ap.add_argument("-d", "--depths", type=int_list, default=[],
                    help="decode depths besides 0, e.g. 4096")
    ap.add_argument("-n", "--n-gen", type=int, default=32, help="decoded tokens per measurement")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--flash-attn", action="store_true",
                    help="llama.cpp with flash attention (llama-cpp-python's default: off; "
                         "llama.cpp's own tools turn it on for the CPU)")
    ap.add_argument("--setup", action="store_true", help="only build bench/.venv")
    args = ap.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    if not in_venv():
        ensure_venv()
        if args.setup:
            return
        os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])
    for f in args.models + ([args.mmproj] if args.mmproj else []) + [args.reel]:
        if not Path(f).exists():
            sys.exit(f"{f} not found (models: tools/reference/make_bench_model.py)")
    run(args)


if __name__ == "__main__":
    main()
