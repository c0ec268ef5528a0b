#!/usr/bin/env python3
"""Writes 1,000,000 bytes of mixed text for `specula bench tokenizer`: Spec-Bench prompts (English instructions,
translation, math, code, summaries) interleaved with code and multilingual lines, with a fixed seed.

Usage: python3 scripts/make-mixed-text.py [SPEC_BENCH_QUESTIONS] [OUT]
Defaults: ../shared/datasets/spec-bench/question.jsonl and /tmp/specula-mixed-1mb.txt.
"""
import json
import pathlib
import random
import sys

root = pathlib.Path(__file__).resolve().parent.parent
source = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared/datasets/spec-bench/question.jsonl"
out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else pathlib.Path("/tmp/specula-mixed-1mb.txt")
random.seed(1)
turns = [turn for line in source.open() for turn in json.loads(line)["turns"]]
extra = ["def f(x):\n    return [i * i for i in range(x)]  # squares\n",
         "Привет, мир! 你好，世界！ 🤖🚀 naïve café\n", "\t\tif (a != b) { return -1; }\n"]
data = b""
while len(data) < 1_000_000:
    data += (random.choice(turns) + "\n" + random.choice(extra)).encode()
# Cut at a character boundary.
data = data[:1_000_000].decode(errors="ignore").encode()
out.write_bytes(data)
print(f"wrote {len(data)} bytes to {out}")
