#!/usr/bin/env python3
"""`specula serve` under 1, 2 and 4 concurrent clients, speculation off and in the default mode, beside llama-server
(plain, and with the same draft model), on the same Spec-Bench prompts; and the server's overhead over
`specula generate` for the same request.

Every request is a streamed chat completion (greedy, up to --max-tokens tokens), timed here: time to first token is
the first chunk with text after the request was sent, a request's tokens/s is its completion tokens over its whole
wall time (queue and prompt pass included), and throughput is all completion tokens over the wall time of the
batch. Each concurrency level sends the same --prompts prompts, --clients at a time. Servers run one after another
(never two at once). specula serves one request at a time (later ones queue); llama-server gets one slot per
client (`-np`), as its users would run it.

Overhead: the same raw-text prompt, speculation off (plain decoding: nothing adaptive), through the server (the
whole request as the client sees it, not streamed, the kept cache emptied first) and through `specula generate
--stats` (the session's own seconds, model load excluded), interleaved --overhead-runs times; medians of tokens/s.

A measurement tool only; llama-server is built as docs/results.md says and is never a dependency.

Usage: python3 scripts/bench-server.py --specula .build/release/specula --llama-server PATH/llama-server
           --target T.gguf --draft D.gguf [--prompts 8] [--max-tokens 96] [--draft-n-max 8] [--out results.jsonl]
"""
import argparse
import json
import statistics
import subprocess
import threading
import time

import benchlib

TASKS = ["writing", "roleplay", "reasoning", "coding", "translation", "summarization", "qa", "math_reasoning", "rag",
         "extraction", "stem", "humanities"]

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--llama-server")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
parser.add_argument("--prompts", type=int, default=8)
parser.add_argument("--max-tokens", type=int, default=96)
parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
parser.add_argument("--draft-n-max", type=int, default=8)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--overhead-runs", type=int, default=5)
parser.add_argument("--port", type=int, default=8290)
parser.add_argument("--out", default="server-bench.jsonl")
args = parser.parse_args()

records = benchlib.load_records(args.data)
by_task = {}
for record in records:
    by_task.setdefault(record.get("category"), []).append(record)
prompts = []
for index in range(args.prompts):
    task = TASKS[index % len(TASKS)]
    prompts.append((task, benchlib.first_turn(by_task[task][index // len(TASKS)])))


def stream(port, text, mode):
    result = benchlib.stream_chat(port, benchlib.chat_body(text, args.max_tokens, mode), timeout=600)
    return {key: result[key] for key in ("ttft", "seconds", "tokens")}


def run_batch(port, clients, mode):
    results = [None] * len(prompts)
    next_index = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= len(prompts):
                return
            results[index] = stream(port, prompts[index][1], mode)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return results, wall


out = open(args.out, "a")


def record(server, mode, clients, results, wall):
    tokens = sum(r["tokens"] for r in results)
    row = {
        "server": server, "mode": mode, "clients": clients, "requests": len(results), "max_tokens": args.max_tokens,
        "ttft_median": statistics.median(r["ttft"] for r in results),
        "request_tps_median": statistics.median(r["tokens"] / r["seconds"] for r in results),
        "throughput": tokens / wall, "tokens": tokens, "wall": wall,
        "per_request": results,
    }
    out.write(json.dumps(row) + "\n")
    out.flush()
    print(f"{server:13} {mode:8} clients {clients}: TTFT median {row['ttft_median']:.2f} s, "
          f"per-request {row['request_tps_median']:.1f} tok/s, throughput {row['throughput']:.1f} tok/s",
          flush=True)


# specula serve: both modes on one server, per request.
port = args.port
process = benchlib.start_server([args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(port),
                                 "-c", "4096", "--queue", "64"], port, "specula serve", "/tmp/specula-serve-bench.log")
stream(port, "Hello", "off")  # warm-up
for clients in args.clients:
    for mode in ("off", "default"):
        results, wall = run_batch(port, clients, mode)
        record("specula", mode, clients, results, wall)

# Overhead over `specula generate`: plain decoding, the same raw-text prompt, interleaved. Before each timed request
# a one-token request with another first token empties the kept cache, so the server runs the whole prompt pass as
# the CLI does (cached_tokens is recorded to show it).
text = prompts[3][1] if len(prompts) > 3 else prompts[0][1]
server_tps, cli_tps, cached = [], [], []


def post(path, body):
    return benchlib.post_json(port, path, body)


for _ in range(args.overhead_runs):
    post("/v1/completions", {"prompt": "Zebra", "max_tokens": 1, "temperature": 0, "speculative": {"mode": "off"}})
    start = time.perf_counter()
    reply = post("/v1/completions", {"prompt": text, "max_tokens": 128, "temperature": 0,
                                     "speculative": {"mode": "off"}})
    server_tps.append(reply["usage"]["completion_tokens"] / (time.perf_counter() - start))
    cached.append(reply["usage"]["prompt_tokens_details"]["cached_tokens"])
    completed = subprocess.run([args.specula, "generate", "--special", "--model", args.target, "--prompt", text,
                                "--max-tokens", "128", "--temperature", "0", "--stats"], capture_output=True,
                               text=True, check=True)
    stats = json.loads(completed.stderr.strip().splitlines()[-1])
    cli_tps.append(stats["tokensPerSecond"])
benchlib.stop_server(process)
overhead = {"server": "specula", "mode": "overhead", "runs": args.overhead_runs,
            "server_tps_median": statistics.median(server_tps), "cli_tps_median": statistics.median(cli_tps),
            "server_tps": server_tps, "cli_tps": cli_tps, "cached_tokens": cached}
overhead["overhead"] = overhead["cli_tps_median"] / overhead["server_tps_median"] - 1
out.write(json.dumps(overhead) + "\n")
print(f"overhead: server {overhead['server_tps_median']:.2f} tok/s, generate {overhead['cli_tps_median']:.2f} tok/s "
      f"({100 * overhead['overhead']:+.1f} %)", flush=True)

if args.llama_server:
    for mode, extra in (("plain", []), ("draft", ["-md", args.draft, "--spec-draft-n-max", str(args.draft_n_max)])):
        for clients in args.clients:
            command = [args.llama_server, "-m", args.target, "-t", str(args.threads), "-c", str(4096 * clients),
                       "-np", str(clients), "--port", str(port + 1), "--host", "127.0.0.1", "--no-webui"] + extra
            llama = benchlib.start_server(command, port + 1, "llama-server", f"/tmp/llama-server-bench-{mode}.log")
            stream(port + 1, "Hello", None)
            results, wall = run_batch(port + 1, clients, None)
            record("llama-server", mode, clients, results, wall)
            benchlib.stop_server(llama)
