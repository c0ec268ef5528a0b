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
import statistics
import sys
import threading
import time

import benchlib
from benchlib import percentile

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--llama-server")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
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

conversation = benchlib.load_records(args.data, benchlib.CONVERSATION)
if not conversation:
    sys.exit(f"no conversation prompts in {args.data}")


def prompt(index):
    return benchlib.first_turn(conversation[index % len(conversation)])


def stream(port, text, mode):
    result = benchlib.stream_chat(port, benchlib.chat_body(text, args.max_tokens, mode))
    result = {key: result[key] for key in ("ttft", "seconds", "tokens", "gaps", "specula")}
    report = result.pop("specula")
    if report:
        # Specula's account of the request: the kinds of round it ran, drafts and acceptances.
        result["specula"] = {key: report.get(key) for key in
                             ("round_kinds", "rounds", "drafted_tokens", "accepted_tokens", "tokens_per_pass")}
    return result


def run(port, clients, mode):
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
            results[index] = stream(port, prompt(index), mode)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - start


out = open(args.out, "a")


def record(server, mode, clients, results, wall, extra=None):
    tokens = sum(r["tokens"] for r in results)
    gaps = [g for r in results for g in r["gaps"]]
    row = {
        "server": server, "mode": mode, "clients": clients, "parallel": args.parallel, "requests": len(results),
        "max_tokens": args.max_tokens, "host": benchlib.host(args.threads), "tokens": tokens, "wall": wall,
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


# Each run starts a fresh server: both servers keep finished requests' caches for reuse, so a run after another on
# the same prompts would skip their prompt passes and not be comparable.
port = args.port


def batch_metrics():
    return {k: v for k, v in benchlib.server_metrics(port).items() if k.startswith("batch_")}


if "specula" in args.servers:
    for clients in args.clients:
        for mode in args.modes:
            process = benchlib.start_server(
                [args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(port), "-c", "4096",
                 "--queue", "256", "-np", str(args.parallel)], port, "specula serve", "/tmp/specula-batching-bench.log")
            stream(port, "Hello", "off")  # warm-up
            before = batch_metrics()
            results, wall = run(port, clients, mode)
            after = batch_metrics()
            batch = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            passes = batch.get("batch_passes_total", 0)
            record("specula", mode, clients, results, wall,
                   {"batch": batch, "mean_segments": batch.get("batch_segments_total", 0) / passes if passes else None})
            benchlib.stop_server(process)

if args.llama_server and "llama-server" in args.servers:
    command = [args.llama_server, "-m", args.target, "-t", str(args.threads), "-c", str(4096 * args.parallel),
               "-np", str(args.parallel), "--port", str(port + 1), "--host", "127.0.0.1", "--no-webui"]
    for clients in args.clients:
        llama = benchlib.start_server(command, port + 1, "llama-server", "/tmp/llama-server-batching.log")
        stream(port + 1, "Hello", None)
        results, wall = run(port + 1, clients, None)
        record("llama-server", "plain", clients, results, wall)
        benchlib.stop_server(llama)
