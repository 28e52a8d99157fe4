"""Helpers for the scripts of tests/server that drive a real `reel serve` on the tiny-a fixture
pair: a Server on a free port (stopped when the test process dies, however it dies), the CLI's
greedy answer to compare with, data: URLs and streamed text. Scripts get BUILD_DIR as their
first argument (run_openai_test.sh passes it).
"""

import base64
import os
import shutil
import subprocess
import sys
import tempfile

import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from reel_process import ServeProcess  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REEL = os.environ.get("REEL_BINARY") or os.path.join(BUILD, "reel")  # CTest sets it
MODEL = os.path.join(BUILD, "fixtures", "models", "tiny-a-q8_0.gguf")
MMPROJ = os.path.join(BUILD, "fixtures", "models", "tiny-a-mmproj-f16.gguf")
IMAGE = os.path.join(ROOT, "assets", "shapes-image.png")
VIDEO = os.path.join(ROOT, "assets", "shapes-clip.mp4")
THREADS = "2"


def _slowdown():
    """1 natively. Under emulation (a cross build's tests get REEL_UNDER_EMULATION=1, see
    tests/emulation.h) Reel runs 10-50 times slower: REEL_EMULATION_SLOWDOWN, default 30."""
    if os.environ.get("REEL_UNDER_EMULATION", "0") in ("", "0"):
        return 1.0
    try:
        return max(1.0, float(os.environ.get("REEL_EMULATION_SLOWDOWN", "30")))
    except ValueError:
        return 30.0


SLOWDOWN = _slowdown()  # waits for Reel multiply by this


class Server(ServeProcess):
    """`reel serve` on the fixture pair, on a free port, ready (/health 200) when constructed.
    `args`: more flags (e.g. ["--parallel", "4"]); `key`: the --api-key it requires, if any."""

    def __init__(self, args=(), key=None):
        self.key = key
        self.media = tempfile.mkdtemp(prefix="reel-serve-test-")
        flags = ["-m", MODEL, "--mmproj", MMPROJ, "-t", THREADS, "--media-dir", self.media, *args]
        if key:
            flags += ["--api-key", key]
        super().__init__(REEL, flags)
        try:
            self.wait_ready(60 * SLOWDOWN)
        except BaseException:
            shutil.rmtree(self.media, ignore_errors=True)
            raise

    def client(self):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.key or "unused",
                             max_retries=0, timeout=120 * SLOWDOWN)

    def stop(self):
        rc = super().stop()
        shutil.rmtree(self.media, ignore_errors=True)
        return rc


def cli_answer(prompt, n, image=None, video=None, args=()):
    """The CLI's greedy one-shot answer (the same defaults otherwise; `args`: more flags)."""
    cmd = [REEL, "-m", MODEL, "-p", prompt, "--temp", "0", "-n", str(n), "-t", THREADS, *args]
    if image or video:
        cmd += ["--mmproj", MMPROJ]
    if image:
        cmd += ["--image", image]
    if video:
        cmd += ["--video", video]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert out.endswith("\n"), repr(out)
    return out[:-1]


def data_url(path, mime):
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()


def stream_text(client, messages, n, **kw):
    chunks = list(client.chat.completions.create(
        model="tiny", messages=messages, temperature=0, max_tokens=n, stream=True, **kw))
    return chunks, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
