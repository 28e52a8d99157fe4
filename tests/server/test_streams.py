"""Live streams in `reel serve` (POST/GET/DELETE /v1/streams and {"type": "stream"} content parts),
all on loopback. One ffmpeg publisher sends assets/shapes-clip.mp4 in real time (-re, looped) as
MPEG-TS over UDP to two ports (the tee muxer: one encode). Checks, in order (later tests build on
the state earlier ones left, hence the numbers):
  1. registering: 201 with the stream's object; the window fills;
  2. a chat completion about the stream (the `openai` client, streamed and not) answers, with
     usage that counts the window's video tokens; asking again reuses the KV prefix;
  3. list and get; 404 for an unknown id (GET, DELETE and a chat part) with OpenAI's error
     object; 400 for a stream without frames yet (one sampled at 0.02 fps has none for 50 s);
     429 beyond --max-streams; 403 for a source no --stream-source allows, and on a server
     without --stream-source; 401 without the API key; a stream part beside an image, in
     either order: its prompt adds up (image alone + stream alone - neither);
  4. deleting stops the stream: 404 afterwards, reel_streams_active drops, and the frames
     encoded (reel_stream_frames_encoded_total) stop growing while the publisher still sends.

Usage: test_streams.py BUILD_DIR   (run by run_openai_test.sh in its virtual environment)
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

import openai

import test_openai
from test_openai import IMAGE, KEY, VIDEO, Server, data_url, die_with_parent

server = None  # `reel serve --stream-source udp://127.0.0.1: --max-streams 2`
publisher = None  # ffmpeg
ports = []


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url(port):
    return f"udp://127.0.0.1:{port}"


def setUpModule():
    global server, publisher, ports
    ports = [free_udp_port(), free_udp_port()]
    outs = "|".join(f"[f=mpegts]{url(p)}?pkt_size=1316" for p in ports)
    publisher = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", VIDEO, "-an", "-c:v",
         "mpeg2video", "-q:v", "5", "-g", "12", "-map", "0:v", "-f", "tee", outs],
        stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    server = Server(["--stream-source", "udp://127.0.0.1:", "--max-streams", "2"])
    test_openai.server = server


def tearDownModule():
    publisher.terminate()
    publisher.wait(10)
    server.stop()
    sys.stderr.write("".join(server.log[-60:]))


def post(path, body, key=KEY):
    return server.request("POST", path, json.dumps(body), key=key)


def metric(name):
    status, text, _ = server.get("/metrics")
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert status == 200 and m, text
    return float(m.group(1))


def stream_part(sid, last=None):
    part = {"type": "stream", "stream": {"id": sid}}
    if last is not None:
        part["stream"]["last_seconds"] = last
    return part


class Streams(unittest.TestCase):
    sid = None  # the stream at 2 fps

    def assert_error(self, status, body, want_status, code=None):
        self.assertEqual(status, want_status, body)
        err = json.loads(body)["error"]
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        self.assertIn("type", err)
        if code:
            self.assertEqual(err["code"], code)

    def get_stream(self, sid):
        status, body, _ = server.get("/v1/streams/" + sid)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_1_register_and_fill(self):
        status, body, _ = post("/v1/streams",
                               {"source": url(ports[0]), "fps": 2, "window_seconds": 10})
        self.assertEqual(status, 201, body)
        s = json.loads(body)
        self.assertTrue(s["id"].startswith("stream-"), s)
        self.assertEqual(s["source"], url(ports[0]))
        self.assertEqual((s["fps"], s["window_seconds"]), (2, 10))
        for key in ("state", "frames", "window_start", "window_end"):
            self.assertIn(key, s)
        Streams.sid = s["id"]
        deadline = time.time() + 30
        while self.get_stream(self.sid)["frames"] < 4:
            self.assertLess(time.time(), deadline, "the window never got 4 frames")
            time.sleep(0.2)
        s = self.get_stream(self.sid)
        self.assertEqual(s["state"], "running")
        self.assertRegex(s["window_start"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertLessEqual(s["window_start"], s["window_end"])
        self.assertEqual(metric("reel_streams_active"), 1)

    def test_2_chat_about_the_stream(self):
        client = server.client()
        msgs = [{"role": "user",
                 "content": [stream_part(self.sid, 5), {"type": "text", "text": "What moves?"}]}]
        r = client.chat.completions.create(model="tiny", messages=msgs, temperature=0,
                                           max_tokens=8)
        self.assertTrue(r.choices[0].message.content)
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertGreaterEqual(r.usage.completion_tokens, 1)
        self.assertLessEqual(r.usage.completion_tokens, 8)
        # At least one group of visual tokens (the window is 10 s; 5 s of it were asked for).
        self.assertGreater(r.usage.prompt_tokens, 20)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)
        # Streamed, about the whole window, with usage at the end.
        msgs[0]["content"][0] = stream_part(self.sid)
        text, usage = "", None
        for c in client.chat.completions.create(model="tiny", messages=msgs, temperature=0,
                                                max_tokens=8, stream=True,
                                                stream_options={"include_usage": True}):
            if c.choices:
                text += c.choices[0].delta.content or ""
            if c.usage:
                usage = c.usage
        self.assertTrue(text)
        self.assertIsNotNone(usage)
        self.assertGreaterEqual(usage.prompt_tokens, r.usage.prompt_tokens)
        # Again: the window only grew (or stayed), so its encoded pairs keep their identities
        # and the conversation's KV prefix is reused (at least the first pair's 60 tokens).
        again = client.chat.completions.create(model="tiny", messages=msgs, temperature=0,
                                               max_tokens=8)
        self.assertGreaterEqual(again.usage.prompt_tokens_details.cached_tokens, 60)

    def test_3_list_get_and_errors(self):
        status, body, _ = server.get("/v1/streams")
        self.assertEqual(status, 200, body)
        self.assertEqual([s["id"] for s in json.loads(body)["data"]], [self.sid])
        self.assertEqual(self.get_stream(self.sid)["source"], url(ports[0]))

        # Unknown ids.
        self.assert_error(*server.get("/v1/streams/stream-nope")[:2], 404, "stream_not_found")
        self.assert_error(*server.request("DELETE", "/v1/streams/stream-nope")[:2], 404)
        with self.assertRaises(openai.NotFoundError) as e:
            server.client().chat.completions.create(
                model="tiny", max_tokens=4,
                messages=[{"role": "user", "content": [stream_part("stream-nope")]}])
        self.assertEqual(e.exception.body["code"], "stream_not_found")
        # Sources no --stream-source allows; bad fields.
        self.assert_error(*post("/v1/streams", {"source": "rtsp://cam.local/x"})[:2], 403,
                          "source_not_allowed")
        self.assert_error(*post("/v1/streams", {"source": url(ports[1]), "fps": 0})[:2], 400)
        self.assert_error(*post("/v1/streams", {"fps": 2})[:2], 400)
        # A stream sampled at 0.02 fps: its first pair needs 50 s, so no frames yet.
        status, body, _ = post("/v1/streams", {"source": url(ports[1]), "fps": 0.02})
        self.assertEqual(status, 201, body)
        slow = json.loads(body)["id"]
        self.assertEqual(self.get_stream(slow)["frames"], 0)
        self.assert_error(*post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": [stream_part(slow)]}]})[:2], 400,
            "stream_empty")
        # --max-streams 2 are taken.
        self.assert_error(*post("/v1/streams", {"source": url(ports[1])})[:2], 429,
                          "too_many_streams")
        status, body, _ = server.request("DELETE", "/v1/streams/" + slow)
        self.assertEqual(status, 200, body)
        # Authentication applies.
        self.assertEqual(server.get("/v1/streams", key=None)[0], 401)
        self.assertEqual(post("/v1/streams", {"source": url(ports[1])}, key="wrong")[0], 401)
        # Stream parts go beside other media, which are resolved as in any request: a path
        # outside every --media-dir is refused as always.
        self.assert_error(*post("/v1/chat/completions", {"messages": [{"role": "user", "content": [
            stream_part(self.sid), {"type": "video_url", "video_url": {"url": "clip.mp4"}}]}]})[:2],
            403, "path_not_allowed")

    def test_3b_stream_beside_an_image(self):
        # An image and a stream part in one request, in either order (the prompt is the CLI's
        # for the image and the window's frames as a video: test_server_stream_part checks it
        # token by token). A look-back of 0.5 s is always the newest pair alone, so the prompts
        # add up: image and stream = image alone + stream alone - neither.
        client = server.client()
        image = {"type": "image_url", "image_url": {"url": data_url(IMAGE, "image/png")}}
        question = {"type": "text", "text": "What is in both?"}

        def prompt_tokens(*parts):
            r = client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": list(parts)}],
                temperature=0, max_tokens=2)
            self.assertTrue(r.choices[0].message.content)
            return r.usage.prompt_tokens

        pair = stream_part(self.sid, 0.5)
        both = prompt_tokens(image, pair, question)
        self.assertEqual(prompt_tokens(pair, image, question), both)
        self.assertEqual(both, prompt_tokens(image, question) + prompt_tokens(pair, question)
                         - prompt_tokens(question))

    def test_4_delete_stops_the_stream(self):
        before = metric("reel_stream_frames_encoded_total")
        self.assertGreater(before, 0)
        status, body, _ = server.request("DELETE", "/v1/streams/" + self.sid)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["state"], "deleted")
        stopped = metric("reel_stream_frames_encoded_total")
        time.sleep(2.5)  # five sampling intervals at 2 fps while the publisher keeps sending
        self.assertIsNone(publisher.poll())
        self.assertEqual(metric("reel_stream_frames_encoded_total"), stopped)
        self.assertEqual(metric("reel_streams_active"), 0)
        self.assert_error(*server.get("/v1/streams/" + self.sid)[:2], 404)
        self.assertEqual(json.loads(server.get("/v1/streams")[1])["data"], [])


class StreamsOff(unittest.TestCase):
    def test_registering_is_forbidden_without_stream_source(self):
        off = Server()
        try:
            status, body, _ = off.request("POST", "/v1/streams",
                                          json.dumps({"source": "udp://127.0.0.1:9"}))
            self.assertEqual(status, 403, body)
            self.assertEqual(json.loads(body)["error"]["code"], "streams_off")
        finally:
            off.stop()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
