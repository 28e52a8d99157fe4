"""`reel serve` as a child process, for the Python tests and benchmarks that drive a real server
(tests/server/*.py, tools/bench/*.py). Standard library only, so any script can import it:

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reel_process import ServeProcess

The server listens on a free loopback port (`--port 0`, found from its "listening on" line), its
stderr is kept for error messages, and it gets SIGTERM when the Python process dies, however it
dies, so a failed test never leaves a server behind.
"""

import ctypes
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

LISTENING = re.compile(r"listening on http://([^\s:]+):(\d+)")


def die_with_parent():
    """Linux: the child gets SIGTERM when its parent thread dies. (The signal follows the thread
    that started the child, so start servers from the main thread.)"""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def http_status(url, timeout=10):
    """The status of a GET of `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class ServeProcess:
    """`reel serve ARGS --port 0` started at once; wait_ready() waits until /health answers 200.

    `args` are the flags after `serve` (without --port). `keep_lines` bounds the kept log (None:
    all of it). After wait_ready(): .port, .url (http://127.0.0.1:PORT). .log: the stderr lines.
    """

    def __init__(self, reel, args, keep_lines=None):
        self.log = []
        self.port = None
        self.url = None
        self.keep_lines = keep_lines
        self._listening = threading.Event()
        self.proc = subprocess.Popen([reel, "serve", *args, "--port", "0"], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True, errors="replace",
                                     preexec_fn=die_with_parent)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)
            if self.keep_lines and len(self.log) > self.keep_lines:
                del self.log[0]
            m = LISTENING.search(line)
            if m and self.port is None:
                self.port = int(m.group(2))
                self._listening.set()

    def text(self, last=None):
        return "".join(self.log[-last:] if last else self.log)

    def wait_ready(self, timeout=60, what="reel serve"):
        """Raises RuntimeError (with the log) when the server exits or is not ready in time."""
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} did not start:\n" + self.text())
        self.url = f"http://127.0.0.1:{self.port}"
        while self.health() != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} never became ready:\n" + self.text())
            time.sleep(0.05)
        return self

    def health(self):
        return http_status(self.url + "/health") if self.url else None

    def stop(self, timeout=30):
        """SIGTERM (SIGKILL after `timeout` s); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode
