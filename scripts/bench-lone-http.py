#!/usr/bin/env python3
"""A lone client through HTTP: `specula serve -np 1` (the unbatched path) beside `specula serve -np P` (every pass
through the batcher, which this client is alone in), both loaded at once on two ports, one request at a time.

Each pair sends the same Spec-Bench prompt (a different one per pair, so neither server reuses a kept prompt) to
both servers, the order alternating pair by pair (ABBA); greedy, exactly --max-tokens tokens asked, not streamed;
a pause before every request so that no server's threads still spin from the last one. Per request: completion
tokens over the client's wall time (HTTP, queue, prompt pass and decoding). Reported: the paired ratio
(-np P ÷ -np 1) per mode, its mean and Student-t 95 % interval.

Usage: python3 scripts/bench-lone-http.py --specula .build/release/specula --target T.gguf --draft D.gguf
           [--pairs 20] [--modes off default] [--parallel 4] [--max-tokens 128] [--out lone-http.jsonl]
A measurement tool only.
"""
import argparse
import json
import statistics
import subprocess
import time

import benchlib

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
parser.add_argument("--pairs", type=int, default=20)
parser.add_argument("--modes", nargs="+", default=["off", "default"])
parser.add_argument("--parallel", type=int, default=4)
parser.add_argument("--max-tokens", type=int, default=128)
parser.add_argument("--pause", type=float, default=1.0)
parser.add_argument("--out", default="lone-http.jsonl")
args = parser.parse_args()

prompts = [benchlib.first_turn(r) for r in benchlib.load_records(args.data, benchlib.CONVERSATION)]

servers = {}
for name, slots, port in (("np1", 1, 8401), ("npP", args.parallel, 8402)):
    servers[name] = (port, subprocess.Popen(
        [args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(port), "-c", "4096", "-np",
         str(slots)], stdout=subprocess.DEVNULL, stderr=open(f"/tmp/specula-lone-{name}.log", "w")))
for name, (port, process) in servers.items():
    benchlib.wait_healthy(port, process, f"specula serve ({name})", f"/tmp/specula-lone-{name}.log")


def request(port, text, mode):
    body = benchlib.chat_body(text, args.max_tokens, mode, stream=False)
    time.sleep(args.pause)
    start = time.perf_counter()
    answer = benchlib.post_json(port, "/v1/chat/completions", body)
    wall = time.perf_counter() - start
    tokens = answer["usage"]["completion_tokens"]
    return {"tokens": tokens, "seconds": wall, "tps": tokens / wall,
            "text": answer["choices"][0]["message"]["content"]}


for name, (port, _) in servers.items():
    request(port, "Hello", "off")  # warm-up

out = open(args.out, "a")
ratios = {mode: [] for mode in args.modes}
for pair in range(args.pairs):
    text = prompts[pair % len(prompts)]
    for mode in args.modes:
        order = ["np1", "npP"] if pair % 2 == 0 else ["npP", "np1"]
        result = {name: request(servers[name][0], text, mode) for name in order}
        same = result["np1"]["text"] == result["npP"]["text"]
        ratio = result["npP"]["tps"] / result["np1"]["tps"]
        ratios[mode].append(ratio)
        row = {"pair": pair, "mode": mode, "parallel": args.parallel, "max_tokens": args.max_tokens,
               "np1": {k: v for k, v in result["np1"].items() if k != "text"},
               "npP": {k: v for k, v in result["npP"].items() if k != "text"}, "same_text": same, "ratio": ratio}
        out.write(json.dumps(row) + "\n")
        out.flush()
        print(f"pair {pair:2} {mode:8}: -np 1 {result['np1']['tps']:5.2f} tok/s, -np {args.parallel} "
              f"{result['npP']['tps']:5.2f} tok/s, ratio {ratio:.3f}{'' if same else ', TEXTS DIFFER'}", flush=True)

for mode, values in ratios.items():
    n = len(values)
    if n < 2:
        continue
    print(f"{mode}: -np {args.parallel} ÷ -np 1 = {statistics.mean(values):.3f} ± {benchlib.interval(values):.3f} "
          f"(mean, Student-t 95 %, {n} pairs; median {statistics.median(values):.3f})")
for _, process in servers.values():
    benchlib.stop_server(process)
