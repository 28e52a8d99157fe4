#!/usr/bin/env python3
"""Time to first token of a chat's first and second turns through `reel serve`: the second
turn re-sends the whole history (an image, the question, the answer) plus a follow-up, as
OpenAI clients do, and the server finds the history in a sequence's KV cache and computes only
the new turn. Reports, per conversation and as medians, both times, the ratio and the cached
tokens the server reports. Each conversation runs on a freshly started server (no other load),
so its first turn finds nothing cached: neither the image's encoding nor any KV prefix.

Usage (in the test venv, which has the `openai` client):
  tests/server/run_openai_test.sh build ../../tools/bench/turn_ttft.py \
      -m MODEL.gguf --mmproj MMPROJ.gguf [-t 2] [-c 4096] [--conversations 3] [--image PNG]
The first argument (the build folder, passed by run_openai_test.sh) names the reel binary.
"""

import argparse
import base64
import os
import statistics
import sys
import time

import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reel_process import ServeProcess  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def start_server(reel, args):
    """A fresh `reel serve`, ready (a 2B-sized model may take minutes to load under load)."""
    return ServeProcess(reel, ["-m", args.model, "--mmproj", args.mmproj, "-t", str(args.threads),
                               "-c", str(args.ctx), "--parallel", "2"]).wait_ready(600)


def ask(client, messages, n):
    t0 = time.monotonic()
    first, text, usage = None, "", None
    for c in client.chat.completions.create(model="reel", messages=messages, temperature=0,
                                            max_tokens=n, stream=True,
                                            stream_options={"include_usage": True}):
        if c.choices and c.choices[0].delta.content:
            first = first or time.monotonic()
            text += c.choices[0].delta.content
        if c.usage:
            usage = c.usage
    return (first or time.monotonic()) - t0, text, usage


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("-m", "--model", required=True)
    p.add_argument("--mmproj", required=True)
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("-c", "--ctx", type=int, default=4096)
    p.add_argument("--conversations", type=int, default=3)
    p.add_argument("--image", default=os.path.join(ROOT, "assets", "shapes-image.png"))
    p.add_argument("--max-tokens", type=int, default=16)
    args = p.parse_args()
    with open(args.image, "rb") as f:
        image = base64.b64encode(f.read()).decode()
    rows = []
    for i in range(args.conversations):
        server = start_server(os.path.join(args.build, "reel"), args)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=1200)
        try:
            history = [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}},
                {"type": "text", "text": f"Conversation {i}: what is in this picture?"}]}]
            t1, answer, u1 = ask(client, history, args.max_tokens)
            history += [{"role": "assistant", "content": answer},
                        {"role": "user", "content": "And what colour is it?"}]
            t2, _, u2 = ask(client, history, args.max_tokens)
            rows.append((t1, t2, u1.prompt_tokens, u2.prompt_tokens,
                         u2.prompt_tokens_details.cached_tokens if u2.prompt_tokens_details else 0))
        finally:
            server.stop()
    print("| conversation | turn 1 TTFT s (prompt tokens) | turn 2 TTFT s (prompt, cached) | turn 2 / turn 1 |")
    print("|---|---|---|---|")
    for i, (t1, t2, p1, p2, c2) in enumerate(rows):
        print(f"| {i} | {t1:.2f} ({p1}) | {t2:.2f} ({p2}, {c2}) | {t2 / t1:.3f} |")
    med1 = statistics.median(r[0] for r in rows)
    med2 = statistics.median(r[1] for r in rows)
    print(f"| median | {med1:.2f} | {med2:.2f} | {med2 / med1:.3f} |")


if __name__ == "__main__":
    main()
