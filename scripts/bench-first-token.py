#!/usr/bin/env python3
"""Where a new request's first-token time goes under load: `specula serve -np P` with a fixed background of
streaming clients, and a probe client whose requests alternate their own speculation mode.

The steady-batch records show the default mode's first token later than with speculation off, but there every
request ran the same mode: the new request's own mode and its companions' are confounded. This separates them. Per
background mode (one fresh server each): `--background` clients stream Spec-Bench conversation prompts back to back
(up to `--max-tokens`); once they run, the probe sends `--probes` requests of `--probe-tokens` tokens, each prompt
twice in a row, once per probe mode (the order alternating ABBA), each starting with a unique tag so that no prompt's
cached prefix helps its twin beyond the shared chat header. For each probe it records the client's first-token time
and the server's own account (`specula` in the last chunk: queued, prompt and first-token seconds).

Usage: python3 scripts/bench-first-token.py --specula .build/release/specula --target T --draft D
           [--background-modes off default] [--probe-modes off default] [--background 3] [--parallel 4]
           [--probes 24] [--out docs/results/first-token-probe.jsonl]
Prints per (background, probe) the median first token and the paired difference of the probe modes (Student-t 95 %
over the pairs).
"""
import argparse
import json
import statistics
import sys
import threading
import time

import benchlib
from benchlib import first_turn as text_of

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
parser.add_argument("--background-modes", nargs="+", default=["off", "default"])
parser.add_argument("--probe-modes", nargs=2, default=["off", "default"])
parser.add_argument("--background", type=int, default=3, help="background streaming clients")
parser.add_argument("--parallel", type=int, default=4, help="the server's slots (-np)")
parser.add_argument("--max-tokens", type=int, default=256, help="tokens per background request")
parser.add_argument("--probes", type=int, default=24, help="probe requests per background mode (pairs: half)")
parser.add_argument("--probe-tokens", type=int, default=8)
parser.add_argument("--gap", type=float, default=1.0, help="seconds between probes")
parser.add_argument("--port", type=int, default=8391)
parser.add_argument("--out", default="first-token-probe.jsonl")
args = parser.parse_args()
if args.background + 1 > args.parallel:
    sys.exit("--parallel must leave a slot for the probe (background + 1 <= parallel)")

conversation = benchlib.load_records(args.data, benchlib.CONVERSATION)
if len(conversation) < 2:
    sys.exit(f"too few conversation prompts in {args.data}")


def body_for(text, tokens, mode):
    return benchlib.chat_body(text, tokens, mode)


def stream(port, body):
    return benchlib.stream_chat(port, body)


out = open(args.out, "a")
port = args.port
for background_mode in args.background_modes:
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    process = benchlib.start_server([args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(port),
                                     "-c", "4096", "--queue", "64", "-np", str(args.parallel)], port, "specula serve",
                                    "/tmp/specula-first-token.log")
    try:
        stream(port, body_for("Hello", 4, "off"))  # warm-up
        stop = threading.Event()
        served = [0]

        def background(index):
            # Background prompts come from the end of the list, probes from the start: no prompt is shared.
            k = index
            while not stop.is_set():
                record = conversation[-1 - (k % (len(conversation) // 2))]
                stream(port, body_for(text_of(record), args.max_tokens, background_mode))
                served[0] += 1
                k += args.background

        threads = [threading.Thread(target=background, args=(i,), daemon=True) for i in range(args.background)]
        for thread in threads:
            thread.start()
        time.sleep(8)  # the background's prompt passes are over and it decodes
        rows = []
        for pair in range(args.probes // 2):
            record = conversation[pair % (len(conversation) // 2)]
            order = list(args.probe_modes) if pair % 2 == 0 else list(reversed(args.probe_modes))
            for mode in order:
                tag = f"(request {background_mode}-{pair}-{mode})\n"
                result = stream(port, body_for(tag + text_of(record), args.probe_tokens, mode))
                report = result["specula"] or {}
                row = {"benchmark": "first-token-probe", "run": run_id, "background_mode": background_mode, "probe_mode": mode,
                       "pair": pair, "prompt": record.get("question_id"), "background": args.background,
                       "parallel": args.parallel, "ttft": result["ttft"],
                       "prompt_tokens": (result["usage"] or {}).get("prompt_tokens"),
                       "cached_prompt_tokens": report.get("cached_prompt_tokens"),
                       "queued_seconds": report.get("queued_seconds"), "prompt_seconds": report.get("prompt_seconds"),
                       "first_token_seconds": report.get("first_token_seconds"), "host": benchlib.host()}
                rows.append(row)
                out.write(json.dumps(row) + "\n")
                out.flush()
                time.sleep(args.gap)
        stop.set()
        for mode in args.probe_modes:
            ttfts = [r["ttft"] for r in rows if r["probe_mode"] == mode and r["ttft"] is not None]
            prompts = [r["prompt_seconds"] for r in rows if r["probe_mode"] == mode and r["prompt_seconds"]]
            print(f"background {background_mode:8} probe {mode:8}: first token median {statistics.median(ttfts):.3f} s"
                  f" (n {len(ttfts)}), server prompt_seconds median "
                  f"{statistics.median(prompts) if prompts else float('nan'):.3f}")
        a, b = args.probe_modes
        diffs = []
        for pair in range(args.probes // 2):
            twin = {r["probe_mode"]: r["ttft"] for r in rows if r["pair"] == pair}  # this run's rows only
            if twin.get(a) is not None and twin.get(b) is not None:
                diffs.append(twin[b] - twin[a])
        if diffs:
            print(f"background {background_mode:8}: first token {b} - {a} = {statistics.mean(diffs):+.3f} "
                  f"± {benchlib.interval(diffs):.3f} s (paired, {len(diffs)} pairs)")
        for thread in threads:
            thread.join(timeout=600)
    finally:
        benchlib.stop_server(process)
