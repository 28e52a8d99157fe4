"""Smoke test of the serving benchmark (tools/bench/serve_bench.py): it starts `reel serve` on the
tiny-a fixture pair itself, runs both workloads at 1 and 2 clients with one short request each,
and must exit 0 with a complete, error-free JSON row per (workload, clients) and the markdown
table on stdout.

Usage: test_serve_bench.py BUILD_DIR   (run by run_openai_test.sh in its virtual environment)
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "tools", "bench", "serve_bench.py")
MODELS = os.path.join(BUILD, "fixtures", "models")
MAX_TOKENS, CLIENTS = 4, [1, 2]
KEYS = {"workload", "clients", "requests", "errors", "max_tokens", "output_tokens", "wall_s",
        "aggregate_tokens_per_s", "vs_1_client", "per_client_decode_tokens_per_s", "ttft_p50_ms",
        "ttft_p95_ms"}


class ServeBench(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with tempfile.TemporaryDirectory(prefix="reel-serve-bench-") as tmp:
            out = os.path.join(tmp, "rows.jsonl")
            cls.run_ = subprocess.run(
                [sys.executable, BENCH, "--reel", os.path.join(BUILD, "reel"),
                 "-m", os.path.join(MODELS, "tiny-a-q8_0.gguf"),
                 "--mmproj", os.path.join(MODELS, "tiny-a-mmproj-f16.gguf"), "-t", "2",
                 "--parallel", "2", "--clients", ",".join(map(str, CLIENTS)),
                 "--requests-per-client", "1", "--max-tokens", str(MAX_TOKENS), "--json", out],
                capture_output=True, text=True, timeout=120)
            with open(out) if os.path.exists(out) else open(os.devnull) as f:
                cls.rows = [json.loads(line) for line in f]

    def test_exits_0(self):
        self.assertEqual(self.run_.returncode, 0, self.run_.stderr)

    def test_a_complete_row_per_workload_and_level(self):
        self.assertEqual([(r["workload"], r["clients"]) for r in self.rows],
                         [(w, n) for w in ("text", "image") for n in CLIENTS])
        for r in self.rows:
            self.assertEqual(set(r), KEYS, r)
            self.assertEqual(r["errors"], 0, r)
            self.assertEqual(r["requests"], r["clients"], r)
            self.assertEqual(r["max_tokens"], MAX_TOKENS, r)
            # ignore_eos: every answer runs to max_tokens.
            self.assertEqual(r["output_tokens"], r["requests"] * MAX_TOKENS, r)
            self.assertGreater(r["wall_s"], 0, r)
            self.assertAlmostEqual(r["aggregate_tokens_per_s"], r["output_tokens"] / r["wall_s"],
                                   delta=0.02 * r["aggregate_tokens_per_s"],  # wall_s is rounded to 0.1 ms
                                   msg=r)
            self.assertGreater(r["ttft_p50_ms"], 0, r)
            self.assertGreaterEqual(r["ttft_p95_ms"], r["ttft_p50_ms"], r)
            if r["clients"] == 1:
                self.assertEqual(r["vs_1_client"], 1.0, r)
            else:
                one = next(o for o in self.rows if o["workload"] == r["workload"] and o["clients"] == 1)
                self.assertAlmostEqual(r["vs_1_client"],
                                       r["aggregate_tokens_per_s"] / one["aggregate_tokens_per_s"],
                                       delta=0.001, msg=r)  # rounded to 3 decimals

    def test_markdown_table_on_stdout(self):
        lines = self.run_.stdout.splitlines()
        self.assertTrue(lines and lines[0].startswith("| workload | clients |"), self.run_.stdout)
        self.assertEqual(len(lines), 2 + 2 * len(CLIENTS), self.run_.stdout)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
