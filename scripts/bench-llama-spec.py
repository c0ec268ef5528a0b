#!/usr/bin/env python3
"""llama.cpp on the Spec-Bench task sets, beside `specula bench speed`: plain decoding, its draft-model speculation
(one run per --spec-draft-n-max value; the table keeps the best per task) and its n-gram speculation, through
llama-server (one server per mode, loaded once; every request's wall time measured here, prompt pass included).

A measurement tool only, never a dependency: build llama-server from the llama.cpp vendored in the
llama-cpp-python sdist on PyPI with -DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON (docs/results.md).

The prompts are the ones `specula bench speed --dataset spec-bench-tasks --prompts N` takes: the first user turn of
each Spec-Bench record of the task, N spread evenly over the task (index i·count/N), sent as a chat completion
(the model's own template), greedy, up to --max-tokens tokens. Requests rotate over the modes prompt by prompt.

Usage: python3 scripts/bench-llama-spec.py --server PATH/llama-server --target T.gguf --draft D.gguf
           [--data ~/.cache/specula/models/spec-bench.jsonl] [--prompts 10] [--max-tokens 128]
           [--temperature 0 …] [--draft-n-max 4 8 16] [--threads 2] [--out results.jsonl]
"""
import argparse
import json
import statistics
import time

import benchlib

TASKS = {
    "mt-bench": benchlib.CONVERSATION,
    "translation": ["translation"],
    "summarization": ["summarization"],
    "qa": ["qa"],
    "math": ["math_reasoning"],
    "rag": ["rag"],
}

parser = argparse.ArgumentParser()
parser.add_argument("--server", required=True)
parser.add_argument("--target", required=True)
parser.add_argument("--draft", required=True)
parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
parser.add_argument("--prompts", type=int, default=10)
parser.add_argument("--max-tokens", type=int, default=128)
parser.add_argument("--temperature", type=float, nargs="+", default=[0.0])
parser.add_argument("--draft-n-max", type=int, nargs="+", default=[4, 8, 16])
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--port", type=int, default=8190)
parser.add_argument("--out", default="llama-spec-bench.jsonl")
args = parser.parse_args()

records = benchlib.load_records(args.data)


def prompts_of(task):
    chosen = [r for r in records if r.get("category") in TASKS[task]]
    n = min(args.prompts, len(chosen))
    return [chosen[i * len(chosen) // n] for i in range(n)]


modes = [("plain", [])]
modes += [(f"draft:{n}", ["-md", args.draft, "--spec-draft-n-max", str(n)]) for n in args.draft_n_max]
modes += [("ngram", ["--spec-type", "ngram-simple"])]

servers = {}


def start(mode, extra, port):
    command = [args.server, "-m", args.target, "-t", str(args.threads), "-c", "4096", "-np", "1", "--port", str(port),
               "--host", "127.0.0.1", "--no-webui"] + extra
    return benchlib.start_server(command, port, f"llama-server ({mode})", f"/tmp/llama-{mode}.log")


def ask(port, text, temperature):
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": args.max_tokens,
            "temperature": temperature, "seed": 0, "cache_prompt": False}
    begin = time.perf_counter()
    answer = benchlib.post_json(port, "/v1/chat/completions", body)
    seconds = time.perf_counter() - begin
    timings = answer.get("timings", {})
    return {
        "seconds": seconds, "tokens": answer["usage"]["completion_tokens"],
        "promptTokens": answer["usage"]["prompt_tokens"], "decodeSeconds": timings.get("predicted_ms", 0) / 1000,
        "draftN": timings.get("draft_n", 0), "draftAccepted": timings.get("draft_n_accepted", 0),
        "text": answer["choices"][0]["message"]["content"],
    }


try:
    for index, (mode, extra) in enumerate(modes):
        servers[mode] = (start(mode, extra, args.port + index), args.port + index)
    out = open(args.out, "a")
    unit = 0
    results = {}
    for temperature in args.temperature:
        for task in TASKS:
            for record in prompts_of(task):
                order = [modes[(k + unit) % len(modes)][0] for k in range(len(modes))]
                unit += 1
                row = {"task": task, "id": record["question_id"], "temperature": temperature}
                for mode in order:
                    row[mode] = ask(servers[mode][1], record["turns"][0], temperature)
                out.write(json.dumps(row) + "\n")
                out.flush()
                results.setdefault((temperature, task), []).append(row)
                print(f"{task} {record['question_id']} T={temperature}: " + ", ".join(
                    f"{m} {row[m]['tokens'] / row[m]['seconds']:.1f} tok/s" for m, _ in modes), flush=True)
    print()
    print("| task | T | llama.cpp plain tok/s | best draft mode | its ratio | ngram ratio | same text (draft, ngram) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (temperature, task), rows in results.items():
        def ratio(mode):
            # Tokens per second over plain decoding's (the modes' texts may differ in length).
            def rate(r, m):
                return r[m]["tokens"] / r[m]["seconds"]
            return statistics.median(rate(r, mode) / rate(r, "plain") for r in rows)
        draft_modes = [m for m, _ in modes if m.startswith("draft:")]
        best = max(draft_modes, key=ratio)
        same = (sum(r[best]["text"] == r["plain"]["text"] for r in rows),
                sum(r["ngram"]["text"] == r["plain"]["text"] for r in rows))
        plain = statistics.median(r["plain"]["tokens"] / r["plain"]["seconds"] for r in rows)
        print(f"| {task} | {temperature:g} | {plain:.1f} | {best} | ×{ratio(best):.2f} | ×{ratio('ngram'):.2f} | "
              f"{same[0]}/{len(rows)}, {same[1]}/{len(rows)} |")
finally:
    for process, _ in servers.values():
        benchlib.stop_server(process)
