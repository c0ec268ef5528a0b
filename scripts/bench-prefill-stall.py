#!/usr/bin/env python3
"""How long a long prompt holds up the generations already running: `specula serve -np 4` with each
--prefill-pass-ms setting (0 = pieces of 64 tokens whatever they cost), runs alternated setting by setting.

In each trial, --decoders streaming clients start greedy chat generations (Spec-Bench conversation prompts,
speculation off so every gap is one pass); once each has its first token, one more client sends a long Spec-Bench
prompt (RAG or summarization, 500–1,000 tokens; --long-tokens tokens asked). Timed here, per trial:
- stall: the longest gap between two text chunks of any decoder while the long prompt was being fed (from its send
  to its first token);
- the decoders' median gap over the same window and outside it;
- the long prompt's time to first token.
Every trial starts a fresh server (no kept prompt cache). The server's own `batch_piece_pass_seconds_max` is
recorded beside them.

Usage: python3 scripts/bench-prefill-stall.py --specula .build/release/specula --target T.gguf --draft D.gguf
           [--settings 0 250] [--rounds 3] [--long-prompts 3] [--out docs/results/prefill-stall.jsonl]
A measurement tool only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=os.path.expanduser("~/.cache/specula/models/spec-bench.jsonl"))
parser.add_argument("--settings", type=float, nargs="+", default=[0, 250], help="--prefill-pass-ms values")
parser.add_argument("--rounds", type=int, default=3, help="alternations of the settings")
parser.add_argument("--long-prompts", type=int, default=3, help="long prompts per server run")
parser.add_argument("--decoders", type=int, default=3)
parser.add_argument("--decoder-tokens", type=int, default=200)
parser.add_argument("--long-tokens", type=int, default=8)
parser.add_argument("--port", type=int, default=8391)
parser.add_argument("--out", default="prefill-stall.jsonl")
args = parser.parse_args()

records = [json.loads(line) for line in open(args.data) if line.strip()]
conversation = [r["turns"][0] for r in records if r.get("category") in ("writing", "roleplay", "stem", "humanities")]
long_prompts = [r["turns"][0] for r in records if r.get("category") in ("rag", "summarization")]
if not conversation or not long_prompts:
    sys.exit(f"no conversation or long prompts in {args.data}")


def stream(text, max_tokens, arrivals, started=None):
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "speculative": {"mode": "off"}}
    request = urllib.request.Request(f"http://127.0.0.1:{args.port}/v1/chat/completions",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices", [])):
                arrivals.append(time.perf_counter())
                if started is not None and not started.is_set():
                    started.set()


def metric(name):
    with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("specula:" + name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def trial(index):
    arrivals = [[] for _ in range(args.decoders)]
    started = [threading.Event() for _ in range(args.decoders)]
    threads = [threading.Thread(target=stream, args=(conversation[(index + d) % len(conversation)],
                                                     args.decoder_tokens, arrivals[d], started[d]))
               for d in range(args.decoders)]
    for t in threads:
        t.start()
    for event in started:
        event.wait(120)
    time.sleep(0.5)
    long_arrivals = []
    sent = time.perf_counter()
    stream(long_prompts[index % len(long_prompts)], args.long_tokens, long_arrivals)
    first = long_arrivals[0] if long_arrivals else time.perf_counter()
    for t in threads:
        t.join()
    inside, outside = [], []
    for times in arrivals:
        for a, b in zip(times, times[1:]):
            # A gap overlapping the prompt's feeding counts as inside.
            (inside if b > sent and a < first else outside).append(b - a)
    return {"ttft": first - sent, "stall": max(inside) if inside else None,
            "inside_median": statistics.median(inside) if inside else None,
            "outside_median": statistics.median(outside) if outside else None, "inside_gaps": len(inside)}


out = open(args.out, "a")
for round_index in range(args.rounds):
    for setting in args.settings:
        process = subprocess.Popen([args.specula, "serve", "-m", args.target, "-md", args.draft, "--port",
                                    str(args.port), "-c", "4096", "-np", "4", "--prefill-pass-ms", str(setting)],
                                   stdout=subprocess.DEVNULL, stderr=open("/tmp/specula-prefill-stall.log", "w"))
        for _ in range(2400):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except Exception:
                if process.poll() is not None:
                    sys.exit("specula serve exited; see /tmp/specula-prefill-stall.log")
                time.sleep(0.25)
        stream("Hello", 4, [])  # warm-up
        for k in range(args.long_prompts):
            result = trial(round_index * args.long_prompts + k)
            result.update({"prefill_pass_ms": setting, "round": round_index, "trial": k,
                           "piece_pass_seconds_max": metric("batch_piece_pass_seconds_max")})
            out.write(json.dumps(result) + "\n")
            out.flush()
            print(f"setting {setting:5.0f} ms round {round_index} trial {k}: stall {result['stall']:.3f} s, "
                  f"gap inside {result['inside_median']:.3f} / outside {result['outside_median']:.3f} s, "
                  f"long prompt TTFT {result['ttft']:.2f} s, server's longest piece pass "
                  f"{result['piece_pass_seconds_max']:.3f} s", flush=True)
        process.terminate()
        process.wait(60)
