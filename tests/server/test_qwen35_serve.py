"""`reel serve` on the Qwen3.5 fixture pair (q35-a, a hybrid Gated DeltaNet text model, with its
DeepStack-free vision tower q35-a-mmproj-f16), driven by the official `openai` client: a text
request and an image request each get the CLI's greedy answer for the same prompt (the CLI's
answers equal transformers', tests test_qwen35_pipeline and test_qwen35_media).

Usage: test_qwen35_serve.py BUILD_DIR   (run by run_openai_test.sh in its virtual environment)
"""

import os
import sys
import unittest

import reel_server
from reel_server import ROOT, BUILD, Server, cli_answer, data_url

# The helpers read these module globals when called.
reel_server.MODEL = os.path.join(BUILD, "fixtures", "models", "q35-a-f32.gguf")
reel_server.MMPROJ = os.path.join(BUILD, "fixtures", "models", "q35-a-mmproj-f16.gguf")
IMAGE = os.path.join(ROOT, "tests", "fixtures", "images", "rgb-97x61.png")


class Qwen35(unittest.TestCase):
    def setUp(self):
        self.server = Server()

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0, "".join(self.server.log))

    def ask(self, content, n):
        r = self.server.client().chat.completions.create(
            model="q35", messages=[{"role": "user", "content": content}], temperature=0,
            max_tokens=n)
        return r.choices[0].message.content

    def test_text_request_equals_cli(self):
        prompt = "Tell me about the colours of the sea."
        self.assertEqual(self.ask(prompt, 16), cli_answer(prompt, 16))

    def test_image_request_equals_cli(self):
        prompt = "Describe this image."
        want = cli_answer(prompt, 16, image=IMAGE)
        content = [{"type": "image_url", "image_url": {"url": data_url(IMAGE, "image/png")}},
                   {"type": "text", "text": prompt}]
        self.assertEqual(self.ask(content, 16), want)
        self.assertTrue(want)  # an answer, not an empty string


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
