#!/usr/bin/env python3
"""The numbers of `reel watch` (issue 13, item 7) on this machine, through `reel watch` itself
on clips generated with the ffmpeg CLI and played in real time (--realtime):

  (a) frames encoded per second for frames of 224x224, 448x448 and 640x480: each run samples
      more frames than the encoder takes, so it works without pause; the summary's milliseconds
      per group (two frames, one temporal patch, encoded as watch encodes them) give the rate;
  (b) the largest --fps sustained at 448x448 with the given threads: from (a), then confirmed
      by a short watch at that rate whose summary must report no frame dropped (lower rates
      are tried when it does);
  (c) time to first token of a question about a full window (default 60 s at 2 fps, frames
      sized by watch for the context, as a user gets them): without prefix reuse (the one
      question at the end of the clip), and with reuse after the window grew by 10 s (a first
      question 10 s before the end, the second at the end reusing its prefix).

The defaults take about 6 minutes with the 2B pair on 2 threads; run it on a quiet machine.
--quick shortens every part (a few seconds each) to check that the script works, e.g. with the
test fixtures: the numbers are then meaningless.

Usage:
  tools/bench/watch_bench.py [--reel build/reel] [-m models/bench/2b-q8_0.gguf]
      [--mmproj models/bench/2b-mmproj-f16.gguf] [-t 2] [--json] [--quick]
"""

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SIZES = ["224x224", "448x448", "640x480"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_clip(folder, size, seconds, rate=25):
    """A generated clip (moving test pattern), MPEG-TS: decoding costs little beside encoding."""
    path = os.path.join(folder, f"clip-{size}-{seconds}s.ts")
    if not os.path.exists(path):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={size}:rate={rate}", "-t", str(seconds), "-c:v",
                        "mpeg2video", "-q:v", "4", "-f", "mpegts", path],
                       check=True, stdin=subprocess.DEVNULL)
    return path


class Watch:
    """One `reel watch` run; stdout (JSON lines) and stderr go to files read as they grow."""

    def __init__(self, args, folder, source, extra):
        self.out = open(os.path.join(folder, "out.txt"), "w+")
        self.err = open(os.path.join(folder, "err.txt"), "w+")
        cmd = [args.reel, "watch", source, "-m", args.model, "--mmproj", args.mmproj,
               "-t", str(args.threads), "--temp", "0", "--realtime"] + extra
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err)

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def lines(self):
        self.out.seek(0)
        return [json.loads(line) for line in self.out.read().splitlines() if line.strip()]

    def wait_for(self, pattern, timeout):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.stderr())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"no '{pattern}' from {' '.join(self.cmd)}:\n{self.stderr()}")

    def finish(self, timeout, interrupt=False):
        if interrupt:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError(f"reel watch did not end within {timeout} s:\n{self.stderr()}")
        if rc not in (0, 130):
            raise RuntimeError(f"reel watch exited {rc}:\n{self.stderr()}")
        return summary(self.stderr())


def summary(err):
    """The summary reel watch prints at exit."""
    m = re.search(r"(\d+) frames read, (\d+) sampled, (\d+) encoded \((\d+) dropped; "
                  r"[\d.]+ per second of video\), ([\d.]+) ms per group to encode", err)
    if not m:
        raise RuntimeError("no summary in:\n" + err)
    size = re.search(r"are encoded at (\d+x\d+) \((\d+) visual tokens", err)
    return {"frames_read": int(m[1]), "sampled": int(m[2]), "encoded": int(m[3]),
            "dropped": int(m[4]), "ms_per_group": float(m[5]),
            "encoded_size": size[1] if size else None,
            "tokens_per_group": int(size[2]) if size else None}


def encode_rate(args, folder, size, seconds):
    """(a): frames per second the vision encoder takes at this frame size, two per group."""
    clip = make_clip(folder, size, seconds + 30)
    # 4 fps sampled is more than a 2B encoder takes at these sizes (it then never waits); a 2 s
    # window keeps the frames at their size (the context is not what bounds them here).
    w = Watch(args, folder, clip, ["--fps", "4", "--window", "2s", "--ask", "x", "--every", "1h",
                                   "-n", "1"])
    w.wait_for(r"are encoded at", 120)
    time.sleep(seconds)
    s = w.finish(120, interrupt=True)
    if s["encoded"] < 4:
        log(f"  {size}: only {s['encoded']} frames encoded in {seconds} s; the mean is rough")
    s["frames_per_second"] = 2000 / s["ms_per_group"] if s["ms_per_group"] > 0 else math.inf
    return s


def sustained_fps(args, folder, rate, seconds):
    """(b): confirms `rate` at 448x448 (then lower ones) with a watch that drops nothing."""
    clip = make_clip(folder, "448x448", seconds)
    tried = []
    # A little below the mean encoding rate: groups do not all take the mean time.
    for factor in (0.9, 0.75, 0.6, 0.5):
        fps = min(25.0, math.floor(rate * factor * 100) / 100)
        if fps < 0.01:
            break
        # A context that holds a 2 s window of 448x448 pairs (196 tokens, ~10 of text each),
        # so that watch keeps the frames at their size.
        ctx = max(4096, 1024 * math.ceil(((fps + 1) * 206 + 128) / 1024))
        w = Watch(args, folder, clip, ["--fps", f"{fps:g}", "--window", "2s", "-c", str(ctx),
                                       "--ask", "x", "--every", "1h", "-n", "1", "--last", "1s"])
        s = w.finish(seconds + 300)
        tried.append({"fps": fps, "dropped": s["dropped"], "sampled": s["sampled"],
                      "encoded_size": s["encoded_size"]})
        log(f"  --fps {fps:g}: {s['sampled']} sampled, {s['dropped']} dropped "
            f"(frames encoded at {s['encoded_size']})")
        if s["encoded_size"] != "448x448":
            log("  (not 448x448: the rate is not the one asked about)")
        if s["dropped"] == 0:
            return fps, tried
    return None, tried


def first_token(args, folder, window, growth):
    """(c): time to first token about a full window, without and with prefix reuse."""
    clip = make_clip(folder, "448x448", window)
    common = ["--window", f"{window}s", "-n", "4", "--ask", "What is happening?"]
    # Without reuse: the only question comes at the end of the clip, about the whole window.
    w = Watch(args, folder, clip, common + ["--every", "1h"])
    s = w.finish(window + 900)
    lines = w.lines()
    if len(lines) != 1:
        raise RuntimeError(f"expected one answer, got {lines}")
    fresh = lines[0]
    # With reuse: a first question `growth` seconds before the end; the one at the end finds
    # that prompt in the KV cache up to its newest group and computes the groups since.
    w = Watch(args, folder, clip, common + ["--every", f"{window - growth}s"])
    w.finish(window + 900)
    lines = w.lines()
    if len(lines) != 2:
        raise RuntimeError(f"expected two answers, got {lines}")
    grown = lines[1]
    return {"window_seconds": window, "growth_seconds": growth,
            "encoded_size": s["encoded_size"], "tokens_per_group": s["tokens_per_group"],
            "frames": fresh["frames"],
            "without_reuse": {k: fresh[k] for k in
                              ("time_to_first_token_ms", "prompt_tokens", "reused_tokens")},
            "with_reuse": {k: grown[k] for k in
                           ("time_to_first_token_ms", "prompt_tokens", "reused_tokens")},
            "first_question": {k: lines[0][k] for k in ("frames", "prompt_tokens")}}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reel", default=os.path.join(ROOT, "build", "reel"))
    p.add_argument("-m", "--model", default=os.path.join(ROOT, "models/bench/2b-q8_0.gguf"))
    p.add_argument("--mmproj", default=os.path.join(ROOT, "models/bench/2b-mmproj-f16.gguf"))
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=15, help="(a): seconds per frame size")
    p.add_argument("--confirm-seconds", type=int, default=20, help="(b): the confirming clip")
    p.add_argument("--window", type=int, default=60, help="(c): the window in seconds")
    p.add_argument("--growth", type=int, default=10, help="(c): growth before the reuse")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds per part, to check the script (numbers meaningless)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.confirm_seconds, args.window, args.growth = 3, 4, 6, 2
    for f in (args.reel, args.model, args.mmproj):
        if not os.path.exists(f):
            sys.exit(f"watch_bench: {f}: no such file")
    t0 = time.time()
    result = {"threads": args.threads, "model": os.path.basename(args.model),
              "mmproj": os.path.basename(args.mmproj), "encode": {}}
    with tempfile.TemporaryDirectory(prefix="reel-watch-bench-") as folder:
        log(f"(a) frames encoded per second, {args.threads} threads")
        for size in SIZES:
            s = encode_rate(args, folder, size, args.seconds)
            result["encode"][size] = s
            log(f"  {size} (encoded at {s['encoded_size']}, {s['tokens_per_group']} tokens per "
                f"pair): {s['frames_per_second']:.2f} frames/s ({s['ms_per_group']:.0f} ms per "
                f"pair, {s['encoded']} frames)")
        rate = result["encode"]["448x448"]["frames_per_second"]
        log(f"(b) the largest --fps sustained at 448x448 (encoder: {rate:.2f} frames/s)")
        fps, tried = sustained_fps(args, folder, rate, args.confirm_seconds)
        result["sustained_fps_448"] = {"fps": fps, "tried": tried}
        log(f"  sustained: --fps {fps}" if fps else "  no rate tried was sustained")
        log(f"(c) time to first token about a full {args.window} s window")
        c = first_token(args, folder, args.window, args.growth)
        result["first_token"] = c
        log(f"  frames encoded at {c['encoded_size']} ({c['tokens_per_group']} tokens per pair), "
            f"{c['frames']} frames in the window")
        for k in ("without_reuse", "with_reuse"):
            r = c[k]
            log(f"  {k.replace('_', ' ')}: {r['time_to_first_token_ms'] / 1000:.2f} s "
                f"({r['prompt_tokens']} prompt tokens, {r['reused_tokens']} reused)")
    result["seconds"] = round(time.time() - t0, 1)
    log(f"done in {result['seconds']} s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
