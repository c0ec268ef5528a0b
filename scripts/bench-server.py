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
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

TASKS = ["writing", "roleplay", "reasoning", "coding", "translation", "summarization", "qa", "math_reasoning", "rag",
         "extraction", "stem", "humanities"]

parser = argparse.ArgumentParser()
parser.add_argument("--specula", default=".build/release/specula")
parser.add_argument("--llama-server")
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=os.path.expanduser("~/.cache/specula/models/spec-bench.jsonl"))
parser.add_argument("--prompts", type=int, default=8)
parser.add_argument("--max-tokens", type=int, default=96)
parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
parser.add_argument("--draft-n-max", type=int, default=8)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--overhead-runs", type=int, default=5)
parser.add_argument("--port", type=int, default=8290)
parser.add_argument("--out", default="server-bench.jsonl")
args = parser.parse_args()

records = [json.loads(line) for line in open(args.data) if line.strip()]
by_task = {}
for record in records:
    by_task.setdefault(record.get("category"), []).append(record)
prompts = []
for index in range(args.prompts):
    task = TASKS[index % len(TASKS)]
    chosen = by_task[task][index // len(TASKS)]
    turns = chosen.get("turns") or [chosen.get("prompt")]
    prompts.append((task, turns[0]))


def wait_healthy(port, process, name):
    for _ in range(1200):
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
    first = None
    tokens = None
    with urllib.request.urlopen(request, timeout=600) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                if first is None and (choice.get("delta") or {}).get("content"):
                    first = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    wall = time.perf_counter() - start
    return {"ttft": first, "seconds": wall, "tokens": tokens}


def run_batch(port, clients, speculative):
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
            results[index] = stream(port, prompts[index][1], speculative)

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
process = subprocess.Popen([args.specula, "serve", "-m", args.target, "-md", args.draft, "--port", str(port),
                            "-c", "4096", "--queue", "64"], stdout=subprocess.DEVNULL,
                           stderr=open("/tmp/specula-serve-bench.log", "w"))
wait_healthy(port, process, "specula serve")
stream(port, "Hello", {"mode": "off"})  # warm-up
for clients in args.clients:
    for mode, speculative in (("off", {"mode": "off"}), ("default", None)):
        results, wall = run_batch(port, clients, speculative)
        record("specula", mode, clients, results, wall)

# Overhead over `specula generate`: plain decoding, the same raw-text prompt, interleaved. Before each timed request
# a one-token request with another first token empties the kept cache, so the server runs the whole prompt pass as
# the CLI does (cached_tokens is recorded to show it).
text = prompts[3][1] if len(prompts) > 3 else prompts[0][1]
server_tps, cli_tps, cached = [], [], []


def post(path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)


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
process.terminate()
process.wait()
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
            llama = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                     stderr=open(f"/tmp/llama-server-bench-{mode}.log", "w"))
            wait_healthy(port + 1, llama, "llama-server")
            stream(port + 1, "Hello", None)
            results, wall = run_batch(port + 1, clients, None)
            record("llama-server", mode, clients, results, wall)
            llama.terminate()
            llama.wait()
