#!/usr/bin/env python3
"""Tests of scripts/bench-process.py's prompt choice: HumanEval's tasks worded as `specula bench speed` words them
(Sources/SpeculaBench/Dataset.swift), bad files (a line that is no task, no task at all, not text, missing) named
with their line, and prompts spread as `bench speed --prompts` spreads them. Run: python3 scripts/test_bench_process.py (CI runs it)."""
import importlib.util
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
spec = importlib.util.spec_from_file_location("bench_process", os.path.join(HERE, "bench-process.py"))
bp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bp)


def write(lines):
    file = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
    file.write("\n".join(lines) + "\n")
    file.close()
    return file.name


class HumanEvalTests(unittest.TestCase):
    def test_prompt_wording_and_ids(self):
        path = write([json.dumps({"task_id": "HumanEval/0", "prompt": "def f(x):\n    \"\"\"Twice x.\"\"\"\n"}), "",
                      json.dumps({"prompt": "def g():\n"})])
        try:
            records = bp.humaneval_prompts(path)
        finally:
            os.unlink(path)
        self.assertEqual(len(records), 2)
        self.assertEqual(records[0]["question_id"], "HumanEval/0")
        self.assertEqual(records[1]["question_id"], "line3")
        self.assertEqual(records[0]["turns"][0],
                         "Complete the following Python function.\n\n```python\ndef f(x):\n    \"\"\"Twice x.\"\"\"\n```")

    def assert_stops_naming(self, contents, where):
        """`humaneval_prompts` of a file holding `contents` (bytes) stops with a message naming `where` (a format
        string of the file's path)."""
        file = tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False)
        file.write(contents)
        file.close()
        try:
            with self.assertRaises(SystemExit) as caught:
                bp.humaneval_prompts(file.name)
        finally:
            os.unlink(file.name)
        self.assertIn(where.format(path=file.name), str(caught.exception))

    def test_bad_line_is_named(self):
        self.assert_stops_naming(json.dumps({"task_id": "a", "prompt": "x"}).encode() + b"\n{not json\n",
                                 "{path}:2: not JSON")

    def test_missing_prompt_is_named(self):
        self.assert_stops_naming(json.dumps({"task_id": "a", "text": "x"}).encode() + b"\n",
                                 "{path}:1: no \"prompt\"")

    def test_file_without_tasks_is_named(self):
        self.assert_stops_naming(b"\n  \n", "{path}: no HumanEval tasks")

    def test_file_that_is_not_text_is_named(self):
        self.assert_stops_naming(b"\xff\xfe\x00garbage\n", "{path}: cannot be read")

    def test_missing_file_is_named(self):
        with self.assertRaises(SystemExit) as caught:
            bp.humaneval_prompts("/nonexistent/HumanEval.jsonl")
        self.assertIn("no such file: /nonexistent/HumanEval.jsonl", str(caught.exception))

    def test_spread_picks_as_bench_speed(self):
        # 164 tasks, 10 prompts: indices i * 164 // 10.
        self.assertEqual(bp.spread(list(range(164)), 10), [0, 16, 32, 49, 65, 82, 98, 114, 131, 147])
        self.assertEqual(bp.spread(list(range(3)), 5), [0, 1, 2])


if __name__ == "__main__":
    unittest.main()
