#!/usr/bin/env python3
"""Tests of scripts/benchlib.py against hand-computed values and a small local HTTP server that streams the way an
OpenAI-compatible server does. Run: python3 scripts/test_benchlib.py (CI runs it)."""
import http.server
import json
import math
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

# What the fake server streams: a role chunk without text, two text chunks 50 ms apart, a chunk carrying two
# tokens' text at once, then usage and the server's own account.
CHUNKS = [
    {"choices": [{"delta": {"role": "assistant"}}]},
    {"choices": [{"delta": {"content": "Hel"}}]},
    {"choices": [{"delta": {"content": "lo"}}]},
    {"choices": [{"delta": {"content": ", world"}}]},
    {"choices": [], "usage": {"completion_tokens": 4, "prompt_tokens": 9}},
    {"choices": [], "specula": {"rounds": 3, "prompt_seconds": 0.01}},
]


class Fake(http.server.BaseHTTPRequestHandler):
    bodies = []

    def log_message(self, *_):
        pass

    def do_GET(self):
        if self.path == "/health":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")
        elif self.path == "/metrics":
            text = ("# HELP specula:batch_passes_total passes\nspecula:batch_passes_total 12\n"
                    "specula:batch_segments_total 30\nother_metric 5\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(text.encode())
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Fake.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for chunk in CHUNKS:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"data: [DONE]\n\n")


class BenchlibTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
        cls.port = cls.server.server_address[1]
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def test_percentile_interpolates_between_order_statistics(self):
        self.assertEqual(benchlib.percentile([4, 1, 3, 2], 0.5), 2.5)
        self.assertAlmostEqual(benchlib.percentile([10, 20, 30, 40, 50], 0.95), 48.0)
        self.assertEqual(benchlib.percentile([7], 0.95), 7)
        self.assertIsNone(benchlib.percentile([], 0.5))

    def test_student_t_interval(self):
        # [1, 2, 3]: standard deviation 1, n = 3, t(2) = 4.302653 → 4.302653 / √3.
        self.assertAlmostEqual(benchlib.interval([1, 2, 3]), 4.302653 / math.sqrt(3), places=6)
        # Published 0.975 quantiles (to the digits of a printed table), and the normal quantile in the limit.
        for df, published in ((1, 12.7062), (2, 4.3027), (5, 2.5706), (10, 2.2281), (35, 2.0301), (120, 1.9799),
                              (1000, 1.9623)):
            self.assertAlmostEqual(benchlib.t975(df), published, places=4)
        self.assertAlmostEqual(benchlib.t975(10 ** 7), 1.959964, places=5)
        self.assertTrue(math.isnan(benchlib.t975(0)))
        self.assertTrue(math.isnan(benchlib.interval([1.0])))

    def test_stream_chat_times_text_chunks_and_reads_usage_and_report(self):
        body = benchlib.chat_body("hi", 8, mode="off")
        result = benchlib.stream_chat(self.port, body)
        self.assertEqual(Fake.bodies[-1], body)
        self.assertEqual(body["speculative"], {"mode": "off"})
        self.assertEqual(len(result["arrivals"]), 3)  # the role chunk and the usage chunks carry no text
        self.assertEqual(result["tokens"], 4)
        self.assertEqual(result["specula"]["rounds"], 3)
        self.assertEqual(len(result["gaps"]), 2)
        self.assertTrue(all(gap >= 0.04 for gap in result["gaps"]))
        self.assertGreaterEqual(result["ttft"], 0.04)  # the role chunk came 50 ms before the first text
        self.assertGreater(result["seconds"], result["arrivals"][-1])

    def test_default_mode_sends_no_speculative_field(self):
        self.assertNotIn("speculative", benchlib.chat_body("hi", 8))
        self.assertNotIn("speculative", benchlib.chat_body("hi", 8, mode="default"))
        self.assertNotIn("stream", benchlib.chat_body("hi", 8, stream=False))

    def test_metrics_keep_the_prefix_only(self):
        self.assertEqual(benchlib.server_metrics(self.port),
                         {"batch_passes_total": 12.0, "batch_segments_total": 30.0})

    def test_wait_healthy_returns_for_a_live_server_and_exits_for_a_dead_process(self):
        alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            benchlib.wait_healthy(self.port, alive, "fake")
        finally:
            alive.kill()
            alive.wait()
        dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        dead.wait()
        with self.assertRaises(SystemExit) as stopped:
            benchlib.wait_healthy(self.port + 1 if self.port < 65535 else 1, dead, "fake", log="/tmp/x.log")
        self.assertIn("fake exited with status 3; see /tmp/x.log", str(stopped.exception.code))

    def test_first_turn_and_categories(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"benchlib-{os.getpid()}.jsonl")
        with open(path, "w") as file:
            file.write(json.dumps({"category": "writing", "turns": ["a", "b"]}) + "\n\n")
            file.write(json.dumps({"category": "rag", "prompt": "c"}) + "\n")
        try:
            self.assertEqual([benchlib.first_turn(r) for r in benchlib.load_records(path)], ["a", "c"])
            self.assertEqual(len(benchlib.load_records(path, benchlib.CONVERSATION)), 1)
        finally:
            os.remove(path)
        with self.assertRaises(SystemExit):
            benchlib.load_records(path)


if __name__ == "__main__":
    unittest.main()
