#!/usr/bin/env python3
"""Many clients at once: `specula serve -np P` (continuous batching) under N concurrent streaming clients, beside
a lone client's plain decoding and llama-server's continuous batching (`-np P`, no draft), on the same Spec-Bench
prompts.

Every request is a streamed chat completion (greedy, exactly --max-tokens tokens: `ignore_eos`-style stops are not
portable, so prompts that end early are kept and counted as they ran), timed here:
- time to first token: the first chunk with text after the request was sent;
- inter-token latency: the gaps between consecutive text chunks (a chunk that carries several tokens counts once;
  its tokens arrived together);
- a request's tokens/s: its completion tokens over its wall time (queue and prompt pass included);
- aggregate tokens/s: all completion tokens over the wall time of the run.
Each run sends --requests-per-client × N requests, N at a time (a client sends its next request when its last one
ends). Servers run one after another, never two at once, and each run starts a fresh server (no kept prompt cache
from an earlier run).

Usage: python3 scripts/bench-batching.py --specula .build/release/specula [--llama-server PATH/llama-server]
           --target T.gguf --draft D.gguf [--clients 1 4 8 16] [--parallel 4] [--max-tokens 256]
           [--out docs/results/batching-bench.jsonl] [--servers specula llama-server] [--modes off default]
Run it once with --parallel 1 --clients 1 --servers specula for the unbatched path a lone client is compared with.
A measurement tool only; llama-server is built as docs/results.md says and is never a dependency.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

# Spec-Bench's conversation prompts: the first turns of its MT-Bench part.
CONVERSATION = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--llama-server")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=os.path.expanduser("~/.cache/specula/models/spec-bench.jsonl"))
parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
parser.add_argument("--parallel", type=int, default=4, help="slots of both servers (-np)")
parser.add_argument("--requests-per-client", type=int, default=2)
parser.add_argument("--max-tokens", type=int, default=256)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--port", type=int, default=8390)
parser.add_argument("--modes", nargs="+", default=["off", "default"], help="specula's speculation modes to run")
parser.add_argument("--out", default="batching-bench.jsonl")
parser.add_argument("--servers", nargs="+", default=["specula", "llama-server"],
                    help="which servers to run (llama-server only with --llama-server)")
args = parser.parse_args()

records = [json.loads(line) for line in open(args.data) if line.strip()]
conversation = [r for r in records if r.get("category") in CONVERSATION]
if not conversation:
    sys.exit(f"no conversation prompts in {args.data}")


def prompt(index):
    chosen = conversation[index % len(conversation)]
    turns = chosen.get("turns") or [chosen.get("prompt")]
    return turns[0]


def wait_healthy(port, process, name):
    for _ in range(2400):
        if process.poll() is not None:
            sys.exit(f"{name} exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.25)
    process.kill()
    sys.exit(f"{name} did not become healthy")


def stream(port, text, speculative):
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": args.max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    if speculative is not None:
        body["speculative"] = speculative
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    arrivals = []
    tokens = None
    report = None
    with urllib.request.urlopen(request, timeout=1800) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices", [])):
                arrivals.append(time.perf_counter() - start)
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("specula"):
                report = chunk["specula"]
    wall = time.perf_counter() - start
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    result = {"ttft": arrivals[0] if arrivals else None, "seconds": wall, "tokens": tokens, "gaps": gaps}
    if report:
        # Specula's account of the request: the kinds of round it ran, drafts and acceptances.
        result["specula"] = {key: report.get(key) for key in
                             ("round_kinds", "rounds", "drafted_tokens", "accepted_tokens", "tokens_per_pass")}
    return result


def run(port, clients, speculative):
    total = clients * args.requests_per_client
    results = [None] * total
    next_index = [0]
    lock = threading.Lock()

    def client():
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= total:
                return
            results[index] = stream(port, prompt(index), speculative)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - start


def percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def host():
    model = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "threads": args.threads}


out = open(args.out, "a")


def record(server, mode, clients, results, wall, extra=None):
    tokens = sum(r["tokens"] for r in results)
    gaps = [g for r in results for g in r["gaps"]]
    row = {
        "server": server, "mode": mode, "clients": clients, "parallel": args.parallel, "requests": len(results),
        "max_tokens": args.max_tokens, "host": host(), "tokens": tokens, "wall": wall,
        "aggregate_tps": tokens / wall,
        "request_tps_median": statistics.median(r["tokens"] / r["seconds"] for r in results),
        "ttft_median": statistics.median(r["ttft"] for r in results),
        "ttft_p95": percentile([r["ttft"] for r in results], 0.95),
        "itl_p50": percentile(gaps, 0.5), "itl_p95": percentile(gaps, 0.95),
        "per_request": [{k: v for k, v in r.items() if k != "gaps"} for r in results],
    }
    row.update(extra or {})
    out.write(json.dumps(row) + "\n")
    out.flush()
    print(f"{server:13} {mode:8} clients {clients:2}: aggregate {row['aggregate_tps']:6.1f} tok/s, per-request "
          f"{row['request_tps_median']:5.1f} tok/s, TTFT median {row['ttft_median']:.2f} s p95 {row['ttft_p95']:.2f} s, "
          f"ITL p50 {1000 * row['itl_p50']:.0f} ms p95 {1000 * row['itl_p95']:.0f} ms", flush=True)


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        values = {}
        for line in response.read().decode().splitlines():
            if line.startswith("specula:batch_") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name.split(":", 1)[1]] = float(value)
        return values


# Each run starts a fresh server: both servers keep finished requests' caches for reuse, so a run after another on
# the same prompts would skip their prompt passes and not be comparable.
port = args.port
if "specula" in args.servers:
    for clients in args.clients:
        for mode in args.modes:
            process = subprocess.Popen([args.specula, "serve", "-m", args.target, "-md", args.draft, "--port",
                                        str(port), "-c", "4096", "--queue", "256", "-np", str(args.parallel)],
                                       stdout=subprocess.DEVNULL, stderr=open("/tmp/specula-batching-bench.log", "w"))
            wait_healthy(port, process, "specula serve")
            stream(port, "Hello", {"mode": "off"})  # warm-up
            before = metrics(port)
            results, wall = run(port, clients, {"mode": mode} if mode != "default" else None)
            after = metrics(port)
            batch = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            passes = batch.get("batch_passes_total", 0)
            record("specula", mode, clients, results, wall,
                   {"batch": batch, "mean_segments": batch.get("batch_segments_total", 0) / passes if passes else None})
            process.terminate()
            process.wait()

if args.llama_server and "llama-server" in args.servers:
    command = [args.llama_server, "-m", args.target, "-t", str(args.threads), "-c", str(4096 * args.parallel),
               "-np", str(args.parallel), "--port", str(port + 1), "--host", "127.0.0.1", "--no-webui"]
    for clients in args.clients:
        llama = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                 stderr=open("/tmp/llama-server-batching.log", "w"))
        wait_healthy(port + 1, llama, "llama-server")
        stream(port + 1, "Hello", None)
        results, wall = run(port + 1, clients, None)
        record("llama-server", "plain", clients, results, wall)
        llama.terminate()
        llama.wait()
