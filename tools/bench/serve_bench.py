#!/usr/bin/env python3
"""Serving benchmark for `reel serve` (or any OpenAI-compatible chat server), driven by the
official `openai` client's AsyncOpenAI.

What it measures. For each workload (`text`: a short text prompt; `image`: one image per request,
sent inline as a data: URL, then a short question) and each concurrency level of `--clients`,
that many clients start together, and each sends `--requests-per-client` streamed chat requests
one after the other, every one with the same `max_tokens` and `ignore_eos` (vLLM's and
llama-server's name; the answer runs to `max_tokens` on a server that honours it), greedy.
Per (workload, clients) it reports:
  - aggregate output tokens/s: all completion tokens of the level (the server's `usage`, or the
    content chunks counted when a server sends no usage) over the level's wall time, from the
    first request sent to the last answer's end (prefill, vision encoding and queueing included,
    and the level's ragged end, where the clients that finished first leave the batch smaller);
  - x 1 client (`vs_1_client`): that figure over the same workload's 1-client figure;
  - per-client decode tokens/s: per request, the tokens after the first over the time from the
    first content chunk to the last, averaged over the requests (what one user sees while their
    answer streams, with the other clients' prefills interleaved; tokens the server sends
    together, e.g. held back for an incomplete UTF-8 character, count at their chunk's time);
  - time to first token p50 and p95: from sending a request to its first content chunk
    (linear interpolation between ranks);
  - requests that completed and errors (exceptions or refusals, e.g. 429 when the clients
    outnumber the server's slots plus its queue).
Every request's prompt is distinct (a number at its start, before any image), so a server's KV
prefix reuse keeps only the chat template's first tokens and prefill does not vanish; PNG and
JPEG images also get a distinct comment (a PNG tEXt chunk, a JPEG COM segment), which decoders
ignore but which changes the bytes, so a server that memoizes encodings by content encodes every
request's image again. `--same-prompt` sends the identical prompt and image every time instead
(measuring a server's reuse). One warm-up request per workload runs first and is not counted.

What it does not measure: quality of the answers (random-weight models are fine); latency
under a steady arrival rate (clients are closed loops: each sends its next request when its
previous answer ends); long prompts or videos; prefill throughput on its own; the network (the
server is meant to be on the same host); the server's internal timings (see its /metrics).

Usage (one of; the `openai` package must be importable, e.g. in the test venv:
`tests/server/run_openai_test.sh build ../../tools/bench/serve_bench.py -m ...` runs it there and
passes the build folder, whose reel it then starts):
  serve_bench.py --url http://HOST:PORT [--api-key KEY] ...
  serve_bench.py --reel build/reel -m MODEL.gguf --mmproj MMPROJ.gguf -t 2 --parallel 8 -c 2048 ...
  serve_bench.py BUILD_DIR -m MODEL.gguf --mmproj MMPROJ.gguf ...
with [--clients 1,2,4,8] [--workloads text,image] [--requests-per-client 3] [--max-tokens 64]
[--image assets/shapes-image.png] [--same-prompt] [--json FILE]. It starts `reel serve` on a free
port itself with --reel and stops it at the end. Prints a markdown table on stdout, and with
--json one JSON object per row to FILE. Exits 1 when any request failed, 2 on bad arguments
or a server that does not start.
"""

import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import time
import zlib

import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reel_process import ServeProcess  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

TOPICS = ["a lighthouse", "the ocean", "a red bicycle", "mountains in winter", "a busy market",
          "an old clock", "a cat on a roof", "the night sky", "a train station", "a forest path",
          "a paper boat", "a summer storm"]


class BenchError(Exception):
    """A setup failure that ends the run (bad arguments, a server that does not start)."""


# --- prompts and images --------------------------------------------------------------------------

def text_prompt(k, same):
    if same:
        return "Write a short story about a lighthouse."
    return f"Request {k}. Write a short story about {TOPICS[k % len(TOPICS)]}."


def png_with_comment(data, note):
    """The PNG with a tEXt chunk after IHDR (ancillary: decoders skip it)."""
    if data[12:16] != b"IHDR":
        return data
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 bytes and CRC
    body = b"Comment\0" + note.encode()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]) & 0xFFFFFFFF)
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def jpeg_with_comment(data, note):
    """The JPEG with a COM segment right after SOI (decoders skip comments)."""
    body = note.encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + data[2:]


class Image:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        if self.data.startswith(b"\x89PNG\r\n\x1a\n"):
            self.mime, self.mark = "image/png", png_with_comment
        elif self.data.startswith(b"\xff\xd8"):
            self.mime, self.mark = "image/jpeg", jpeg_with_comment
        else:  # sent as is: a server that memoizes encodings encodes it once
            ext = os.path.splitext(path)[1].lower().lstrip(".") or "octet-stream"
            self.mime, self.mark = f"image/{ext}", None

    def url(self, k, same):
        data = self.data if same or not self.mark else self.mark(self.data, f"serve_bench {k}")
        return f"data:{self.mime};base64," + base64.b64encode(data).decode()


def messages(workload, k, args, image):
    if workload == "text":
        return [{"role": "user", "content": text_prompt(k, args.same_prompt)}]
    head = "Look at this picture." if args.same_prompt else f"Request {k}. Look at this picture."
    return [{"role": "user", "content": [
        {"type": "text", "text": head},
        {"type": "image_url", "image_url": {"url": image.url(k, args.same_prompt)}},
        {"type": "text", "text": "Describe it in detail."}]}]


# --- the server ----------------------------------------------------------------------------------

def start_server(args):
    """`reel serve` on a free port of 127.0.0.1, ready; BenchError (with its log) otherwise."""
    flags = ["-m", args.model, "--host", "127.0.0.1", "-t", str(args.threads),
             "--parallel", str(args.parallel)]
    if args.mmproj:
        flags += ["--mmproj", args.mmproj]
    if args.ctx:
        flags += ["-c", str(args.ctx)]
    server = ServeProcess(args.reel, flags + args.server_arg, keep_lines=200)
    try:
        return server.wait_ready(args.start_timeout)
    except RuntimeError as e:
        raise BenchError(str(e)) from None


# --- one request, one level ----------------------------------------------------------------------

async def one_request(client, model, msgs, args):
    """Streams one answer; returns (completion tokens, ttft s, first-to-last content s)."""
    t0 = time.perf_counter()
    first = last = None
    chunks = 0
    usage = None
    stream = await client.chat.completions.create(
        model=model, messages=msgs, max_tokens=args.max_tokens, temperature=0, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    async for c in stream:
        if c.usage is not None:
            usage = c.usage
        if c.choices and c.choices[0].delta.content:
            now = time.perf_counter()
            first = now if first is None else first
            last = now
            chunks += 1
    tokens = usage.completion_tokens if usage is not None else chunks
    if first is None:
        raise RuntimeError("the answer had no content")
    return tokens, first - t0, last - first


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return None
    x = (len(v) - 1) * q
    lo = int(x)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (x - lo)


async def run_level(client, model, workload, n_clients, args, image, counter):
    results, errors = [], []

    async def one_client():
        for _ in range(args.requests_per_client):
            k = next(counter)
            try:
                results.append(await one_request(client, model, messages(workload, k, args, image), args))
            except Exception as e:  # counted, the level goes on
                errors.append(f"{type(e).__name__}: {e}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(n_clients)))
    wall = time.perf_counter() - t0
    tokens = sum(r[0] for r in results)
    decode = [(r[0] - 1) / r[2] for r in results if r[0] > 1 and r[2] > 0]
    ttft = [r[1] for r in results]
    row = {
        "workload": workload, "clients": n_clients, "requests": len(results), "errors": len(errors),
        "max_tokens": args.max_tokens, "output_tokens": tokens, "wall_s": round(wall, 4),
        "aggregate_tokens_per_s": round(tokens / wall, 2) if wall > 0 else None,
        "per_client_decode_tokens_per_s": round(sum(decode) / len(decode), 2) if decode else None,
        "ttft_p50_ms": round(percentile(ttft, 0.5) * 1000, 1) if ttft else None,
        "ttft_p95_ms": round(percentile(ttft, 0.95) * 1000, 1) if ttft else None,
    }
    return row, errors


# --- the whole run -------------------------------------------------------------------------------

def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(rows):
    head = ("| workload | clients | requests | errors | output tokens | wall s | aggregate tok/s "
            "| x 1 client | per-client decode tok/s | TTFT p50 ms | TTFT p95 ms |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append("| " + " | ".join([
            r["workload"], str(r["clients"]), str(r["requests"]), str(r["errors"]),
            str(r["output_tokens"]), fmt(r["wall_s"], 2), fmt(r["aggregate_tokens_per_s"]),
            fmt(r["vs_1_client"], 2), fmt(r["per_client_decode_tokens_per_s"]),
            fmt(r["ttft_p50_ms"], 0), fmt(r["ttft_p95_ms"], 0)]) + " |")
    return "\n".join(lines)


async def bench(url, args):
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=args.api_key or "unused",
                                max_retries=0, timeout=args.request_timeout)
    try:
        model = args.served_model
        if not model:
            models = (await client.models.list()).data
            model = models[0].id if models else "reel"
        image = Image(args.image) if "image" in args.workloads else None
        counter = iter(range(10**9))
        rows, failures = [], []
        for workload in args.workloads:
            try:  # warm-up: page the weights in, first allocations, the first vision encode
                await one_request(client, model, messages(workload, next(counter), args, image), args)
            except Exception as e:
                failures.append(f"{workload} warm-up: {type(e).__name__}: {e}")
            one = None
            for n in args.clients:
                row, errors = await run_level(client, model, workload, n, args, image, counter)
                if n == 1:
                    one = row["aggregate_tokens_per_s"]
                row["vs_1_client"] = (round(row["aggregate_tokens_per_s"] / one, 3)
                                      if one and row["aggregate_tokens_per_s"] is not None else None)
                rows.append(row)
                failures += [f"{workload} x{n}: {e}" for e in errors]
                print(f"serve_bench: {workload} x{n}: {row['aggregate_tokens_per_s']} tok/s, "
                      f"{row['errors']} errors", file=sys.stderr, flush=True)
        return rows, failures
    finally:
        await client.close()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    target = p.add_argument_group("server: --url, or --reel with -m to start one")
    target.add_argument("build", nargs="?",
                        help="a build folder: its reel is started when neither --reel nor --url is "
                             "given (tests/server/run_openai_test.sh passes it first)")
    target.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8080")
    target.add_argument("--api-key", default=os.environ.get("REEL_API_KEY"),
                        help="bearer key (default $REEL_API_KEY)")
    target.add_argument("--reel", help="the reel binary to start `reel serve` with")
    target.add_argument("-m", "--model", help="text model (with --reel)")
    target.add_argument("--mmproj", help="vision model (with --reel; needed for the image workload)")
    target.add_argument("-t", "--threads", type=int, default=2)
    target.add_argument("--parallel", type=int, default=8)
    target.add_argument("-c", "--ctx", type=int, help="context per conversation (reel's default if absent)")
    target.add_argument("--server-arg", action="append", default=[],
                        help="one more argument for reel serve (repeatable; --server-arg=-b)")
    target.add_argument("--start-timeout", type=float, default=300)
    p.add_argument("--served-model", help="the `model` field (default: the server's first model)")
    p.add_argument("--clients", default="1,2,4,8", help="concurrency levels (default 1,2,4,8)")
    p.add_argument("--workloads", default="text,image", help="text, image or both (default)")
    p.add_argument("--requests-per-client", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--image", default=os.path.join(ROOT, "assets", "shapes-image.png"))
    p.add_argument("--same-prompt", action="store_true",
                   help="the same prompt and image bytes every time (measures prefix and media reuse)")
    p.add_argument("--request-timeout", type=float, default=600)
    p.add_argument("--json", help="write one JSON object per row to this file")
    args = p.parse_args(argv)
    try:
        args.clients = [int(x) for x in args.clients.split(",") if x]
    except ValueError:
        p.error("--clients: a comma-separated list of numbers")
    args.workloads = [w for w in args.workloads.split(",") if w]
    if not args.clients or min(args.clients) < 1:
        p.error("--clients: numbers of at least 1")
    if not args.workloads or set(args.workloads) - {"text", "image"}:
        p.error("--workloads: text, image or text,image")
    if args.requests_per_client < 1 or args.max_tokens < 1:
        p.error("--requests-per-client and --max-tokens must be at least 1")
    if args.build and not args.url and not args.reel:
        args.reel = os.path.join(args.build, "reel")
    if bool(args.url) == bool(args.reel):
        p.error("give either --url or --reel (with -m)")
    if args.reel and not args.model:
        p.error("--reel needs -m MODEL")
    if args.reel and "image" in args.workloads and not args.mmproj:
        p.error("the image workload needs --mmproj (or --workloads text)")
    if "image" in args.workloads and not os.path.isfile(args.image):
        p.error(f"--image: no file {args.image}")
    return args


def main(argv):
    args = parse_args(argv)
    server = None
    try:
        if args.reel:
            server = start_server(args)
        rows, failures = asyncio.run(bench(args.url or server.url, args))
    except BenchError as e:
        print(f"serve_bench: {e}", file=sys.stderr)
        return 2
    finally:
        if server:
            server.stop()
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    for f in failures[:20]:
        print(f"serve_bench: failed: {f}", file=sys.stderr)
    if len(failures) > 20:
        print(f"serve_bench: ... and {len(failures) - 20} more failures", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
