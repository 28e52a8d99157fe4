#!/usr/bin/python3
"""`reel watch` pulling RTSP over loopback, TCP and UDP transport: tests/cli/rtsp_server.py (GStreamer's
RTSP server) serves a generated live H.264 stream; for each transport, `reel watch
rtsp://127.0.0.1:PORT/<transport> --rtsp-transport <transport> --ask ... --max-answers 2` must print
two answer lines. The server's /tcp and /udp paths accept only that transport, so a --rtsp-transport
that were ignored would fail; the crossed pairs are checked to fail too.

Usage: test_rtsp_watch.py REEL_BINARY MODEL MMPROJ
Exits 77 (a skip for ctest) when GStreamer's RTSP server is not installed, unless the environment
variable CI is set: in CI it must run (scripts/install-deps.sh installs it).
"""

import json
import os
import signal
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REEL, MODEL, MMPROJ = (os.path.abspath(a) for a in sys.argv[1:4]) if len(sys.argv) > 3 else (None,) * 3
QUESTION = "What moves?"
KEYS = ("window_start", "window_end", "frames", "question", "answer", "time_to_first_token_ms")

rtsp = None
port = None


def start_rtsp_server():
    """The RTSP server's process and port; exits 77 (or 1 in CI) when it is not installed."""
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "rtsp_server.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: __import__("ctypes").CDLL(None).prctl(1, signal.SIGTERM))
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        rc = proc.wait(10)
        why = proc.stderr.read().strip()
        if rc == 77 and not os.environ.get("CI"):
            print(f"SKIPPED: {why}; install gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 "
                  "gstreamer1.0-plugins-ugly (scripts/install-deps.sh)", file=sys.stderr)
            sys.exit(77)
        print(f"the RTSP server did not start (exit {rc}): {why}", file=sys.stderr)
        sys.exit(1)
    return proc, int(line.split()[1])


def watch(path, transport, answers, extra=()):
    cmd = [REEL, "watch", f"rtsp://127.0.0.1:{port}/{path}", "--rtsp-transport", transport,
           "-m", MODEL, "--mmproj", MMPROJ, "--temp", "0", "-t", "1", "-n", "4",
           "--ask", QUESTION, "--every", "1s", "--max-answers", str(answers), *extra]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


class RtspPull(unittest.TestCase):
    def check_answers(self, transport):
        r = watch(transport, transport, 2)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(lines), 2, r.stdout)
        for j in lines:
            for k in KEYS:
                self.assertIn(k, j)
            self.assertEqual(j["question"], QUESTION)
            self.assertGreater(j["frames"], 0)
            self.assertTrue(j["answer"])
            self.assertLessEqual(j["window_start"], j["window_end"])
        self.assertGreater(lines[1]["frames"], lines[0]["frames"])  # the window grew
        self.assertIn("frames of 160x120", r.stderr)

    def test_tcp(self):
        self.check_answers("tcp")

    def test_udp(self):
        self.check_answers("udp")

    def test_the_transport_flag_decides(self):
        for path, transport in (("udp", "tcp"), ("tcp", "udp")):
            r = watch(path, transport, 1, ["--open-timeout", "2s", "--no-reconnect"])
            self.assertNotEqual(r.returncode, 0, f"{transport} to /{path}: {r.stdout}")
            self.assertEqual(r.stdout, "")
            self.assertIn("cannot open", r.stderr)


if __name__ == "__main__":
    if REEL is None:
        sys.exit("usage: test_rtsp_watch.py REEL_BINARY MODEL MMPROJ")
    rtsp, port = start_rtsp_server()
    try:
        ok = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result.wasSuccessful()
    finally:
        rtsp.terminate()
        rtsp.wait(10)
    sys.exit(0 if ok else 1)
