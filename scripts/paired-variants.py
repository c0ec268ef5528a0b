#!/usr/bin/env python3
"""Two `specula bench speed` runs of the same prompts compared prompt by prompt: a variant (a build, a draft option)
against a baseline, each run beside its own plain decoding.

Each record's speedup is the method's tokens per second over plain decoding's on the same prompt in the same process,
so a ratio of two runs' speedups on one prompt cancels most of the host's drift between the runs. Per configuration
(dataset and temperature) and over all of them, this prints for every method both runs have: the geometric mean over
prompts of variant ÷ baseline for the speedup (whole run, prompt pass included), the decode-only speedup and the
tokens per target call, each with a Student-t 95 % interval on the logs (prompts − 1 degrees of freedom).

Usage: python3 scripts/paired-variants.py BASELINE/speed.jsonl VARIANT/speed.jsonl [--markdown]
"""
import json
import math
import sys

from benchlib import interval

METRICS = [("speedup", "speedup"), ("decodeSpeedup", "decode-only speedup"), ("tokensPerCall", "tokens per call")]


def load(path):
    records = {}
    with open(path) as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                records[(record["configuration"], record["prompt"])] = record
    return records


def methods_of(record):
    return sorted({key.split("|")[0] for key in record["metrics"] if not key.startswith("plain|")})


def geometric(logs):
    mean = sum(logs) / len(logs)
    half = interval(logs) if len(logs) > 1 else 0.0
    return "×%.2f (%.2f–%.2f)" % (math.exp(mean), math.exp(mean - half), math.exp(mean + half))


def main():
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(arguments) != 2:
        sys.exit(__doc__)
    markdown = "--markdown" in sys.argv
    baseline, variant = load(arguments[0]), load(arguments[1])
    shared = [key for key in baseline if key in variant]
    if not shared:
        sys.exit("no prompt is in both runs")
    configurations = sorted({key[0] for key in shared})
    methods = [m for m in methods_of(baseline[shared[0]]) if m in methods_of(variant[shared[0]])]
    header = ["method", "configuration", "prompts"] + [label for _, label in METRICS]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
    else:
        print("  ".join(header))
    for method in methods:
        for configuration in configurations + ["all"]:
            keys = [k for k in shared if configuration in ("all", k[0])]
            cells = []
            for metric, _ in METRICS:
                logs = []
                for key in keys:
                    a = baseline[key]["metrics"].get("%s|%s" % (method, metric))
                    b = variant[key]["metrics"].get("%s|%s" % (method, metric))
                    if a and b and a[0] > 0 and b[0] > 0:
                        logs.append(math.log(b[0] / a[0]))
                cells.append(geometric(logs) if logs else "–")
            row = [method, configuration, str(len(keys))] + cells
            print(("| " + " | ".join(row) + " |") if markdown else "  ".join(row))


if __name__ == "__main__":
    main()
