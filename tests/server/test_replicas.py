"""Two `reel serve` replicas behind nginx, configured by deploy/nginx/make-conf.sh as
docs/deploy.md says, all on loopback. Checks, in order (each test builds on the state the ones
before left, hence the numbers):
  1. conversations, each with its own X-Session-Id, stay on one replica (every later turn finds
     its whole history in that replica's KV cache), and both replicas serve some;
  2. every answer through nginx equals a direct request to a fresh replica that is sent the same
     requests in the same order (the cache state a request meets changes the last bits of its
     KV rows, so "the same request" includes what came before it);
  3. a stream's events pass nginx as the replica writes them, not when a buffer fills or the
     answer ends;
  4. when a replica dies, its conversations go to the other, with the right answer;
  5. nginx's own errors (body too large, no replica left) are OpenAI error objects.

Usage: test_replicas.py BUILD_DIR   (run by run_openai_test.sh in its virtual environment)
Exits 77 (a skip for ctest) when nginx is not installed, unless the environment variable CI is
set: in CI it must run.
"""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from reel_process import ServeProcess, die_with_parent  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# REEL_BINARY: set by CTest (in a cross build, a wrapper that runs reel under the emulator).
REEL = os.environ.get("REEL_BINARY") or os.path.join(BUILD, "reel")
MODEL = os.path.join(BUILD, "fixtures", "models", "tiny-a-q8_0.gguf")
MMPROJ = os.path.join(BUILD, "fixtures", "models", "tiny-a-mmproj-f16.gguf")
IMAGE = os.path.join(ROOT, "assets", "shapes-image.png")
MAKE_CONF = os.path.join(ROOT, "deploy", "nginx", "make-conf.sh")
KEY = "test-key-123"
MAX_BODY_MB = 4
# One conversation slot per replica, and conversations one after another: a replica keeps one
# history, so each later turn finds its own only if it stayed on the replica. (With interleaved
# conversations, a new one takes over the slot of another, whose first tokens, the chat
# template's, it shares, even when a slot is free.) One thread each: four replicas (two behind
# nginx, two references) share two cores, and test 3 needs a prompt that takes a while to read.
REEL_ARGS = ["-m", MODEL, "--mmproj", MMPROJ, "-t", "1", "--parallel", "1",
             "--queue", "2", "--max-body-mb", str(MAX_BODY_MB), "--api-key", KEY]
MIN_CONVERSATIONS, MIN_PER_REPLICA, MAX_CONVERSATIONS = 6, 2, 30
QUESTIONS = ["What shape is this?", "What color is it?", "How many objects are there?",
             "Is there a circle?", "What is in the picture?", "Which color is the square?"]
FOLLOW_UPS = ["And its color?", "How many are there?"]


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)


NGINX = find_nginx()


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def http_request(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


class Replica(ServeProcess):
    """A `reel serve` whose stderr is collected: started at once, wait_ready() waits for it."""

    def __init__(self, name):
        self.name = name
        super().__init__(REEL, REEL_ARGS)

    def wait_ready(self):
        super().wait_ready(60, self.name)
        self.addr = f"127.0.0.1:{self.port}"

    def client(self):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=KEY, max_retries=0, timeout=120)

    def metric(self, name):
        body = http_request(self.url + "/metrics", headers={"Authorization": "Bearer " + KEY})[1]
        return float(re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M).group(1))

    def chat_requests_logged(self):
        return sum("POST /v1/chat/completions status=200" in l for l in self.log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx in a temporary prefix, configured by deploy/nginx/make-conf.sh, in the foreground."""

    def __init__(self, replicas):
        self.dir = tempfile.mkdtemp(prefix="reel-nginx-test-")
        # Run by root, nginx's workers are `nobody`, who must be able to enter the prefix.
        os.chmod(self.dir, 0o711)
        self.proc = None
        for _ in range(5):  # the free port may be taken before nginx binds it
            self.port = free_port()
            subprocess.run([MAKE_CONF, self.dir, "--listen", f"127.0.0.1:{self.port}",
                            "--max-body-mb", str(MAX_BODY_MB), "--workers", "1",
                            *[r.addr for r in replicas]], check=True)
            with open(os.path.join(self.dir, "logs", "stderr.log"), "ab") as stderr:
                self.proc = subprocess.Popen(
                    [NGINX, "-p", self.dir, "-c", "nginx.conf", "-g", "daemon off;"],
                    stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=die_with_parent)
            if self._wait_listening():
                break
            self.proc.kill()
            self.proc.wait()
        else:
            raise RuntimeError("nginx did not start:\n" + self._read("logs/stderr.log") +
                               self._read("logs/error.log"))
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_listening(self):
        deadline = time.time() + 20
        while self.proc.poll() is None and time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def access_log(self):
        return self._read("logs/access.log")

    def upstreams(self, session, n):
        """The `upstream=` field (the replicas tried) of the access log's lines for a session,
        once there are n (each is written as its request ends, maybe a moment after the
        client has the answer)."""
        pattern = r'session="' + re.escape(session) + r'" upstream=(.*?) upstream_status'

        def lines():
            return re.findall(pattern, self.access_log())
        wait_for(lambda: len(lines()) >= n, 10, f"{n} access log lines of {session}")
        return lines()

    def _read(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read()
        except OSError:
            return ""

    def client(self, session=None):
        headers = {"X-Session-Id": session} if session else None
        return openai.OpenAI(base_url=self.url + "/v1", api_key=KEY, max_retries=0, timeout=120,
                             default_headers=headers)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # fast shutdown; the workers go with the master
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


replicas = []  # the two behind nginx
references = []  # two more, only ever asked directly, to replay what each replica was sent
nginx = None
# What went through nginx in test 1: per conversation, its session id, replica index and turns
# (messages sent, response); per replica, the requests it was sent, in order.
conversations = []
sent_to = [[], []]


def setUpModule():
    global nginx
    started = []
    try:
        for name in ("replica 0", "replica 1", "reference 0", "reference 1"):
            started.append(Replica(name))  # all four load their model at the same time
        for r in started:
            r.wait_ready()
        replicas.extend(started[:2])
        references.extend(started[2:])
        nginx = Nginx(replicas)
    except BaseException:
        for r in started:
            r.stop()
        raise


def tearDownModule():
    if nginx:
        nginx.stop()
    for r in replicas + references:
        r.stop()
    for r in replicas + references:
        sys.stderr.write(f"--- {r.name}'s log (the end):\n" + "".join(r.log[-40:]))


def data_url(path, mime):
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()


def ask(client, messages, **kw):
    """A short greedy answer, unless kw says otherwise."""
    return client.chat.completions.create(model="tiny", messages=messages,
                                          **{"temperature": 0, "max_tokens": 8, **kw})


class Answer:
    """What a test compares of an answer, streamed or not: its text, how it ended and its
    token counts (equal counts mean the request met the same cache)."""

    def __init__(self, response=None, chunks=None):
        if response is not None:
            usage = response.usage
            self.text = response.choices[0].message.content
            self.finish = response.choices[0].finish_reason
        else:
            usage = chunks[-1].usage
            self.text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            self.finish = next(c.choices[0].finish_reason for c in chunks
                               if c.choices and c.choices[0].finish_reason)
        self.prompt_tokens = usage.prompt_tokens
        self.cached_tokens = usage.prompt_tokens_details.cached_tokens
        self.counts = (usage.prompt_tokens, self.cached_tokens, usage.completion_tokens)

    def __eq__(self, other):
        return (self.text, self.finish, self.counts) == (other.text, other.finish, other.counts)

    def __repr__(self):
        return f"Answer({self.text!r}, {self.finish}, prompt/cached/completion {self.counts})"


def ask_streamed(client, messages):
    """ask(), streamed. (How many events carry the text depends on timing: the replica sends
    what was generated since its last event.)"""
    chunks = list(ask(client, messages, stream=True, stream_options={"include_usage": True}))
    well_formed = chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices == []
    assert well_formed, "a stream begins with the role and ends with the usage: " + repr(chunks)
    return Answer(chunks=chunks)


def replica_index(upstream):
    """Which replica an access log's `upstream=` names (an error if several were tried)."""
    return [r.addr for r in replicas].index(upstream)


class Replicas(unittest.TestCase):
    def test_1_conversations_stay_on_their_replica(self):
        image = {"type": "image_url", "image_url": {"url": data_url(IMAGE, "image/png")}}
        per_replica = [0, 0]
        while len(conversations) < MIN_CONVERSATIONS or min(per_replica) < MIN_PER_REPLICA:
            # Where a session lands depends on the replicas' (random) ports: the hash decides.
            self.assertLess(len(conversations), MAX_CONVERSATIONS,
                            f"{per_replica} conversations per replica: not spread")
            i = len(conversations)
            session = f"conversation-{i}"
            client = nginx.client(session)
            question = QUESTIONS[i % len(QUESTIONS)]
            history = [{"role": "user", "content": [image, {"type": "text", "text": question}]}]
            turns = [(history, Answer(ask(client, history)))]
            for n, follow_up in enumerate(FOLLOW_UPS):
                history = history + [{"role": "assistant", "content": turns[-1][1].text},
                                     {"role": "user", "content": follow_up}]
                if n < len(FOLLOW_UPS) - 1:
                    turns.append((history, Answer(ask(client, history))))
                else:  # the last turn streamed (test 3 checks the events' timing)
                    turns.append((history, ask_streamed(client, history)))
            where = set(nginx.upstreams(session, len(turns)))
            self.assertEqual(len(where), 1, f"{session} was served by {where}")
            replica = replica_index(where.pop())
            per_replica[replica] += 1
            conversations.append((session, replica, turns))
            sent_to[replica].extend(turns)
            for (_, before), (_, after) in zip(turns, turns[1:]):
                # Everything up to the previous answer was in the replica's cache already
                # (elsewhere only the chat template's first tokens would be).
                self.assertGreaterEqual(after.cached_tokens, before.prompt_tokens, session)
        # Each replica's own log has the requests nginx says it sent there.
        for i, r in enumerate(replicas):
            wait_for(lambda: r.chat_requests_logged() >= len(sent_to[i]), 10, f"replica {i}'s log")
            self.assertEqual(r.chat_requests_logged(), len(sent_to[i]), f"replica {i}")

    def test_2_answers_equal_direct_requests(self):
        self.assertTrue(conversations, "test 1 sent nothing")
        for i, reference in enumerate(references):
            client = reference.client()
            for n, (messages, through_nginx) in enumerate(sent_to[i]):
                self.assertEqual(Answer(ask(client, messages)), through_nginx,
                                 f"replica {i}'s request {n}: direct, then through nginx")

    def test_3_stream_passes_through_unbuffered(self):
        # A replica sends a stream's first event (the role) when it starts on the request, then
        # reads the prompt: 3400 tokens, most of a second on one thread. A client that closes the
        # stream on that first event stops the answer before its first tokens, but only if nginx
        # passed the event on at once; buffered, it would come with the last tokens.
        session = next((s for s, replica, _ in conversations if replica == 0), None)
        self.assertTrue(session, "test 1 sent replica 0 nothing")
        logged = len(nginx.upstreams(session, 0))
        prompt = "red square " * 1700
        before = [replicas[0].metric("reel_prompt_tokens_total"),
                  replicas[0].metric("reel_completion_tokens_total")]
        # A high temperature makes the end-of-text token unlikely: left alone, the answer
        # would have all its 16 tokens.
        stream = ask(nginx.client(session), [{"role": "user", "content": prompt}],
                     stream=True, temperature=2.0, seed=1, max_tokens=16)
        first = next(iter(stream))
        stream.close()
        self.assertEqual(first.choices[0].delta.role, "assistant")
        self.assertEqual(nginx.upstreams(session, logged + 1)[-1], replicas[0].addr)
        wait_for(lambda: replicas[0].metric("reel_active_sessions") == 0, 10, "the answer to stop")
        read = replicas[0].metric("reel_prompt_tokens_total") - before[0]
        generated = replicas[0].metric("reel_completion_tokens_total") - before[1]
        self.assertGreater(read, 3000, "the replica did not read the prompt")
        self.assertLess(generated, 16, "the first event reached the client only with the last ones")

    def test_4_a_dead_replica_s_conversations_move(self):
        conversation = next((c for c in conversations if c[1] == 0), None)
        self.assertTrue(conversation, "test 1 sent replica 0 nothing")
        session, _, turns = conversation
        history, last = turns[-1]
        history = history + [{"role": "assistant", "content": last.text},
                             {"role": "user", "content": "What shape is it?"}]
        logged = len(nginx.upstreams(session, 0))
        dead, survivor = replicas
        dead.proc.kill()
        dead.proc.wait()
        answer = Answer(ask(nginx.client(session), history))
        # nginx tried the dead replica first (as the hash says), then the survivor.
        self.assertEqual(nginx.upstreams(session, logged + 1)[-1], f"{dead.addr}, {survivor.addr}")
        # The survivor had been sent only its own conversations (test 1), as its reference was
        # (test 2): the same request there gives the same answer.
        self.assertEqual(Answer(ask(references[1].client(), history)), answer)

    def test_5_nginx_errors_are_openai_objects(self):
        big = json.dumps({"messages": [{"role": "user", "content": "x" * (MAX_BODY_MB << 20)}]})
        status, body = post_raw(big.encode())
        self.assert_error(status, body, 413)
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        status, body = post_raw(b'{"messages": [{"role": "user", "content": "Hi"}]}')
        self.assertEqual(self.assert_error(status, body, 503)["code"], "replica_unavailable")

    def assert_error(self, status, body, want_status):
        self.assertEqual(status, want_status, body)
        err = json.loads(body)["error"]
        self.assertEqual(set(err), {"message", "type", "param", "code"}, err)
        self.assertTrue(err["message"])
        return err


def post_raw(body):
    """POSTs a chat request to nginx; a body nginx refuses may be cut short by it (a reset is
    then the answer's end, not an error)."""
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=60)
    try:
        conn.putrequest("POST", "/v1/chat/completions")
        for k, v in (("Authorization", "Bearer " + KEY), ("Content-Type", "application/json"),
                     ("Content-Length", str(len(body)))):
            conn.putheader(k, v)
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


if __name__ == "__main__":
    if not NGINX:
        if os.environ.get("CI"):
            sys.exit("test_replicas.py: nginx is not installed (scripts/install-deps.sh installs "
                     "it), and in CI this test must run")
        print("test_replicas.py: SKIPPED: nginx is not installed (scripts/install-deps.sh "
              "installs it)")
        sys.exit(77)
    unittest.main(argv=sys.argv[:1], verbosity=2)
