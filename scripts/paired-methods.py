#!/usr/bin/env python3
"""Two methods of one `specula bench speed` run compared prompt by prompt.

Each prompt's runs (plain decoding and every method) ran one after another on the same host, so the ratio of two
methods' tokens per second on a prompt is paired: the host's drift between prompts cancels. Per configuration
(dataset and temperature) this prints, for methods A and B: the geometric mean over prompts of A's and B's tokens
per second over plain decoding's and of A's over B's, each with a Student-t 95 % interval on the log ratios; and the
mean difference of tokens per target call, A − B, with its Student-t 95 % interval. End to end (times include the
prompt pass) unless --decode (the prompt pass left out, as the bench's "after prefill" columns).

Usage: python3 scripts/paired-methods.py RECORDS.jsonl METHOD_A METHOD_B [--decode] [--markdown]
(methods as the records key them, with or without the verifier the record names after a space: "adaptive" matches
"adaptive token" at T > 0 and "adaptive greedy" at T = 0; "adaptive+trees:0", "ngram token", …)
"""
import json
import math
import sys

from benchlib import interval


def mean_interval(values):
    """The mean and the half-width of its Student-t 95 % interval (0 for a single value)."""
    return sum(values) / len(values), interval(values) if len(values) > 1 else 0.0


def geometric(ratios):
    mean, half = mean_interval([math.log(r) for r in ratios])
    return "×%.2f (%.2f–%.2f)" % (math.exp(mean), math.exp(mean - half), math.exp(mean + half))


def method_key(metrics, method):
    """The records' name of `method`: itself, or itself followed by a space and the verifier."""
    names = {key.split("|")[0] for key in metrics}
    if method in names:
        return method
    found = [name for name in names if name.split(" ")[0] == method]
    return found[0] if len(found) == 1 else None


def paired_rows(path, a, b, rate="tokensPerSecond"):
    """Per configuration, per prompt: (A ÷ plain, B ÷ plain, A ÷ B, [A's, B's tokens per call]). Raises OSError,
    ValueError or KeyError on a file that is not a bench speed record."""
    rows = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            metrics = record["metrics"]
            names = [method_key(metrics, m) for m in ("plain", a, b)]
            keys = [f"{name}|{rate}" for name in names]
            if None in names or not all(key in metrics for key in keys):
                continue
            plain, ra, rb = (metrics[key][0] for key in keys)
            calls = [metrics.get(f"{name}|tokensPerCall", [math.nan])[0] for name in names[1:]]
            rows.setdefault(record["configuration"], []).append((ra / plain, rb / plain, ra / rb, calls))
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 3:
        sys.exit(__doc__)
    path, a, b = args
    rate = "decodeTokensPerSecond" if "--decode" in sys.argv else "tokensPerSecond"
    try:
        rows = paired_rows(path, a, b, rate)
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"{path}: cannot read a bench speed record ({error})")
    if not rows:
        sys.exit(f"{path}: no record holds plain, '{a}' and '{b}' (method names as the records key them)")
    markdown = "--markdown" in sys.argv
    if markdown:
        print(f"| configuration | prompts | {a} ÷ plain | {b} ÷ plain | {a} ÷ {b} (paired) | tokens per call, A − B |")
        print("| --- | --- | --- | --- | --- | --- |")
    for configuration, values in rows.items():
        diff, half = mean_interval([ca - cb for _, _, _, (ca, cb) in values])
        fields = [
            configuration, str(len(values)), geometric([v[0] for v in values]), geometric([v[1] for v in values]),
            geometric([v[2] for v in values]), "%+.2f ± %.2f" % (diff, half),
        ]
        print("| " + " | ".join(fields) + " |" if markdown else "  ".join(fields))


if __name__ == "__main__":
    main()
