#!/usr/bin/env python3
"""Speedups at T > 0 recomputed from `specula bench speed` records as ratios of tokens per second.

At T > 0 plain decoding and a speculative method sample different texts of different lengths, so plain time over
the method's time is not a speedup; `bench speed` divides tokens per second since 2026-12-04 (at T = 0 both give
the same number). Older records keep every run's tokens and seconds, so their cells can be recomputed: this prints,
per record file, configuration and method, the median over prompts of the old ratio (plain seconds over the
method's) and of the ratio of rates, the geometric mean of the latter with a Student-t 95 % interval, and in how many
prompts the two runs' lengths differed. With --all, T = 0 cells too (there old and new must agree; a check).

Usage: python3 scripts/rate-ratios.py docs/results/speed.jsonl [more.jsonl …] [--all] [--markdown]
"""
import json
import math
import statistics
import sys

from benchlib import t975


def cells(path, everything):
    rows = {}
    with open(path) as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            configuration = record["configuration"]
            if not everything and configuration.endswith("T=0"):
                continue
            metrics = record["metrics"]
            if "plain|seconds" not in metrics:
                continue
            plain_tokens, plain_seconds = metrics["plain|tokens"][0], metrics["plain|seconds"][0]
            for method in sorted({key.split("|")[0] for key in metrics} - {"plain"}):
                if method + "|seconds" not in metrics:
                    continue
                tokens, seconds = metrics[method + "|tokens"][0], metrics[method + "|seconds"][0]
                old = plain_seconds / seconds
                new = (tokens / seconds) / (plain_tokens / plain_seconds) if min(tokens, plain_tokens) > 0 else old
                rows.setdefault((configuration, method), []).append((old, new, tokens != plain_tokens))
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    everything = "--all" in sys.argv
    markdown = "--markdown" in sys.argv
    if not args:
        sys.exit(__doc__)
    if markdown:
        print("| records | configuration | method | prompts | median, time ratio | median, rate ratio "
              "| geometric mean of rate ratios (95 %) | lengths differed |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in args:
        try:
            rows = cells(path, everything)
        except (OSError, ValueError, KeyError) as error:
            sys.exit(f"{path}: cannot read a bench speed record ({error})")
        for (configuration, method), values in sorted(rows.items()):
            logs = [math.log(new) for _, new, _ in values]
            mean = sum(logs) / len(logs)
            half = 0.0
            if len(logs) > 1:
                sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
                half = t975(len(logs) - 1) * sd / math.sqrt(len(logs))
            fields = [
                path.split("/")[-1], configuration, method, str(len(values)),
                "×%.2f" % statistics.median(old for old, _, _ in values),
                "×%.2f" % statistics.median(new for _, new, _ in values),
                "×%.2f (%.2f–%.2f)" % (math.exp(mean), math.exp(mean - half), math.exp(mean + half)),
                str(sum(1 for _, _, differed in values if differed)),
            ]
            print("| " + " | ".join(fields) + " |" if markdown else "  ".join(fields))


if __name__ == "__main__":
    main()
