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
import statistics
import sys
import threading
import time

import benchlib

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
parser.add_argument("--settings", type=float, nargs="+", default=[0, 250], help="--prefill-pass-ms values")
parser.add_argument("--rounds", type=int, default=3, help="alternations of the settings")
parser.add_argument("--long-prompts", type=int, default=3, help="long prompts per server run")
parser.add_argument("--decoders", type=int, default=3)
parser.add_argument("--decoder-tokens", type=int, default=200)
parser.add_argument("--long-tokens", type=int, default=8)
parser.add_argument("--port", type=int, default=8391)
parser.add_argument("--out", default="prefill-stall.jsonl")
args = parser.parse_args()

conversation = [benchlib.first_turn(r) for r in
                benchlib.load_records(args.data, ("writing", "roleplay", "stem", "humanities"))]
long_prompts = [benchlib.first_turn(r) for r in benchlib.load_records(args.data, ("rag", "summarization"))]
if not conversation or not long_prompts:
    sys.exit(f"no conversation or long prompts in {args.data}")


def stream(text, max_tokens, arrivals, started=None):
    """Streams a plain (speculation off) generation; `arrivals` gets the clock time of every text chunk."""
    def on_text():
        arrivals.append(time.perf_counter())
        if started is not None and not started.is_set():
            started.set()

    benchlib.stream_chat(args.port, benchlib.chat_body(text, max_tokens, "off"), timeout=600, on_text=on_text)


def metric(name):
    return benchlib.server_metrics(args.port).get(name)


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
        process = benchlib.start_server(
            [args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(args.port), "-c", "4096",
             "-np", "4", "--prefill-pass-ms", str(setting)], args.port, "specula serve",
            "/tmp/specula-prefill-stall.log")
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
        benchlib.stop_server(process)
