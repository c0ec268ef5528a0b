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
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

CONVERSATION = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]
# Student-t 0.975 quantiles by degrees of freedom (beyond 30: 2.0).
T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 11: 2.20,
        12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11, 18: 2.10, 19: 2.09, 20: 2.09, 21: 2.08,
        22: 2.07, 23: 2.07, 24: 2.06, 25: 2.06, 26: 2.06, 27: 2.05, 28: 2.05, 29: 2.05, 30: 2.04}

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=os.path.expanduser("~/.cache/specula/models/spec-bench.jsonl"))
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

records = [json.loads(line) for line in open(args.data) if line.strip()]
conversation = [r for r in records if r.get("category") in CONVERSATION]
if len(conversation) < 2:
    sys.exit(f"too few conversation prompts in {args.data}")


def text_of(record):
    turns = record.get("turns") or [record.get("prompt")]
    return turns[0]


def body_for(text, tokens, mode):
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    if mode != "default":
        body["speculative"] = {"mode": mode}
    return body


def stream(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    first = None
    report = None
    usage = None
    with urllib.request.urlopen(request, timeout=1800) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                first = time.perf_counter() - start
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk.get("specula"):
                report = chunk["specula"]
    return {"ttft": first, "seconds": time.perf_counter() - start, "usage": usage, "specula": report}


def wait_healthy(port, process):
    for _ in range(2400):
        if process.poll() is not None:
            sys.exit("specula serve exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.25)
    process.kill()
    sys.exit("specula serve did not become healthy")


def host():
    model = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count()}


def interval(values):
    if len(values) < 2:
        return float("nan")
    return T975.get(len(values) - 1, 2.0) * statistics.stdev(values) / math.sqrt(len(values))


out = open(args.out, "a")
port = args.port
for background_mode in args.background_modes:
    process = subprocess.Popen([args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(port),
                                "-c", "4096", "--queue", "64", "-np", str(args.parallel)],
                               stdout=subprocess.DEVNULL, stderr=open("/tmp/specula-first-token.log", "w"))
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        wait_healthy(port, process)
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
                       "first_token_seconds": report.get("first_token_seconds"), "host": host()}
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
                  f"± {interval(diffs):.3f} s (paired, {len(diffs)} pairs)")
        for thread in threads:
            thread.join(timeout=600)
    finally:
        process.terminate()
        process.wait()
