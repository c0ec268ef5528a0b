#!/usr/bin/env python3
"""Specula's default mode beside llama.cpp's best mode, per Spec-Bench task, from the two benchmarks' records.

Reads a `scripts/bench-llama-spec.py` record (llama.cpp through llama-server: plain, draft-model speculation per
--spec-draft-n-max, n-gram speculation; one line per prompt) and a `specula bench speed --dataset spec-bench-tasks`
record (plain decoding and the default mode, `adaptive greedy`; one line per prompt and temperature) taken on the
same prompts, and prints one markdown row per task:

- both engines' plain decoding, tokens per second (medians over the task's prompts);
- llama.cpp's best mode on that task: the one with the highest median ratio of tokens per second to its own plain
  decoding, prompt by prompt (plain itself when nothing beats it), and that ratio;
- Specula's default mode, tokens per second (median), and its ratio to llama.cpp's best mode prompt by prompt:
  the geometric mean with a Student-t 95 % interval on the log ratios, and how many prompts Specula won.

Both records time a request from its start to its last token with the model loaded (prompt pass included). Only
prompts present in both records count. The last line pools every prompt.

Usage: python3 scripts/beside-llama.py --llama LLAMA.jsonl --specula SPECULA.jsonl [--temperature 0]
"""
import argparse
import json
import math
import statistics
import sys

from benchlib import t975

TASKS = ["mt-bench", "translation", "summarization", "qa", "math", "rag"]
NAMES = {
    "mt-bench": "MT-Bench",
    "translation": "translation",
    "summarization": "summarization",
    "qa": "question answering",
    "math": "math",
    "rag": "RAG",
}
DEFAULT = "adaptive greedy"


def rate(run):
    return run["tokens"] / run["seconds"] if run and run.get("seconds") else None


def geometric(ratios):
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), math.nan, math.nan
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def load(llama_path, specula_path, temperature):
    llama = {}
    with open(llama_path) as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if abs(record["temperature"] - temperature) < 1e-9:
                    llama[(record["task"], str(record["id"]))] = record
    specula = {}
    suffix = f" T={temperature:g}"
    with open(specula_path) as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            configuration = record["configuration"]
            if not configuration.endswith(suffix):
                continue
            task = configuration[: -len(suffix)]
            metrics = record["metrics"]

            def value(name):
                values = metrics.get(name)
                return statistics.median(values) if values else None

            plain, default = value("plain|tokensPerSecond"), value(f"{DEFAULT}|tokensPerSecond")
            if plain and default:
                specula[(task, str(record["prompt"]))] = (plain, default)
    return llama, specula


def row(task, keys, llama, specula):
    modes = [m for m in llama[keys[0]] if m not in ("task", "id", "temperature")]
    llama_plain = [rate(llama[k]["plain"]) for k in keys]
    best, best_ratio = "plain", 1.0
    for mode in modes:
        if mode == "plain":
            continue
        ratios = [rate(llama[k].get(mode)) / p for k, p in zip(keys, llama_plain) if rate(llama[k].get(mode))]
        if len(ratios) == len(keys) and statistics.median(ratios) > best_ratio:
            best, best_ratio = mode, statistics.median(ratios)
    best_rates = [rate(llama[k][best]) for k in keys]
    ours = [specula[k][1] for k in keys]
    ratios = [o / b for o, b in zip(ours, best_rates)]
    mean, low, high = geometric(ratios)
    won = sum(1 for r in ratios if r > 1)
    label = best.replace("draft:", "draft, n-max ")
    cells = [
        NAMES.get(task, task),
        f"{statistics.median([specula[k][0] for k in keys]):.1f}",
        f"{statistics.median(llama_plain):.1f}",
        label,
        f"×{best_ratio:.2f}",
        f"{statistics.median(ours):.1f}",
        f"×{mean:.2f} ({low:.2f}–{high:.2f})",
        f"{won}/{len(keys)}",
    ]
    return "| " + " | ".join(cells) + " |", ratios


def table(llama_path, specula_path, temperature=0.0):
    """The markdown lines: header, one row per task, a blank line, the pooled line."""
    llama, specula = load(llama_path, specula_path, temperature)
    lines = [
        "| task | Specula plain tok/s | llama.cpp plain tok/s | llama.cpp best mode | its ratio to its plain "
        "| Specula default tok/s | Specula default ÷ llama.cpp best | prompts won |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    pooled = []
    for task in TASKS:
        keys = sorted(k for k in llama if k[0] == task and k in specula)
        if not keys:
            continue
        line, ratios = row(task, keys, llama, specula)
        pooled += ratios
        lines.append(line)
    if pooled:
        mean, low, high = geometric(pooled)
        won = sum(1 for r in pooled if r > 1)
        lines += ["", f"All prompts: ×{mean:.2f} ({low:.2f}–{high:.2f}), Specula won {won} of {len(pooled)}."]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama", required=True)
    parser.add_argument("--specula", required=True)
    parser.add_argument("--temperature", type=float, default=0.0)
    arguments = parser.parse_args()
    try:
        lines = table(arguments.llama, arguments.specula, arguments.temperature)
    except OSError as error:
        sys.exit(f"beside-llama: {error.filename}: {error.strerror}")
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        sys.exit(f"beside-llama: a record of {arguments.llama} or {arguments.specula} is not of its benchmark: {error!r}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
