#!/usr/bin/env python3
"""Two `specula` builds' forward passes compared phase by phase, paired round by round: for kernel changes whose gain
is smaller than the host's drift between minutes.

Each round runs `specula bench model --phases` with the same arguments under both builds, back to back, the order
alternating (A B, B A, A B, ...), so that a drift of the host falls on both sides. Each `--phases` line (a decoding
step at a context, a verify pass of N tokens, a pass over S sequences) gives per phase the milliseconds per pass; a
round's ratio is B's over A's for the same line and phase. Printed per line and phase: the medians of A and B, the
geometric mean of the rounds' ratios B ÷ A with its Student-t 95 % interval (on the logs, rounds − 1 degrees of
freedom), and how many rounds B was faster in. With --json, the rounds' raw numbers go to a file as well.

Usage: python3 scripts/ab-phases.py --a OLD_BINARY --b NEW_BINARY --rounds 6 [--json FILE] -- \\
           --model MODEL --contexts 256 2048 --verify 8 --sequences 4 --runs 9
"""
import argparse
import json
import math
import re
import statistics
import subprocess
import sys

from benchlib import interval

# "  decode at 256 per pass (ms): gate, up products 16.27, …, residual adds 0.03; total 39.7"
LINE = re.compile(r"^\s*(.+?) per pass \(ms\): (.*); total ([0-9.]+)\s*$")
PHASE = re.compile(r"^(.*?) ([0-9.]+)$")


def parse_phases(text):
    """{line: {phase: milliseconds, …, "total": …}} from one `bench model --phases` output."""
    result = {}
    for raw in text.splitlines():
        match = LINE.match(raw)
        if not match:
            continue
        label, parts, total = match.groups()
        phases = {}
        # Phase names hold commas ("gate, up products 16.27"): a part without a number joins the next one.
        pending = []
        for part in parts.split(", "):
            piece = PHASE.match(part)
            if piece is None:
                pending.append(part)
                continue
            phases[", ".join(pending + [piece.group(1)])] = float(piece.group(2))
            pending = []
        phases["total"] = float(total)
        result[label] = phases
    return result


def summarize(rounds):
    """Per (line, phase) seen in every round of both builds: A's and B's medians, the geometric-mean ratio B ÷ A with
    its 95 % interval (as factors), and the rounds B was faster in."""
    rows = []
    if not rounds:
        return rows
    labels = set.intersection(*(set(r["a"]) & set(r["b"]) for r in rounds))
    for label in sorted(labels):
        phases = set.intersection(*(set(r["a"][label]) & set(r["b"][label]) for r in rounds))
        for phase in sorted(phases, key=lambda p: (p != "total", p)):
            a = [r["a"][label][phase] for r in rounds]
            b = [r["b"][label][phase] for r in rounds]
            if min(a) <= 0 or min(b) <= 0:
                continue
            logs = [math.log(y / x) for x, y in zip(a, b)]
            mean = statistics.fmean(logs)
            half = interval(logs)
            rows.append({
                "line": label, "phase": phase, "a": statistics.median(a), "b": statistics.median(b),
                "ratio": math.exp(mean), "low": math.exp(mean - half) if not math.isnan(half) else math.nan,
                "high": math.exp(mean + half) if not math.isnan(half) else math.nan,
                "faster": sum(y < x for x, y in zip(a, b)), "rounds": len(rounds),
            })
    return rows


def run(binary, arguments):
    completed = subprocess.run(
        [binary, "bench", "model", "--phases", *arguments], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"ab-phases: {binary} bench model failed ({completed.returncode}): {completed.stderr.strip()[-400:]}")
    phases = parse_phases(completed.stdout)
    if not phases:
        sys.exit(f"ab-phases: {binary} printed no phase lines (is it a build with --phases?)")
    return phases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="the baseline `specula` binary")
    parser.add_argument("--b", required=True, help="the changed `specula` binary")
    parser.add_argument("--rounds", type=int, default=6, help="paired rounds (default 6)")
    parser.add_argument("--json", help="write the rounds' raw numbers and the summary here")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then the arguments of `bench model`")
    options = parser.parse_args()
    arguments = options.rest[1:] if options.rest[:1] == ["--"] else options.rest
    if options.rounds < 2:
        sys.exit("ab-phases: --rounds must be at least 2 (an interval needs two pairs)")
    if "--phases" in arguments:
        arguments.remove("--phases")
    rounds = []
    for index in range(options.rounds):
        order = ("a", "b") if index % 2 == 0 else ("b", "a")
        result = {}
        for side in order:
            result[side] = run(getattr(options, side), arguments)
        rounds.append(result)
        print(f"round {index + 1}/{options.rounds} done ({' then '.join(order)})", file=sys.stderr, flush=True)
    rows = summarize(rounds)
    print(f"{'pass':<24} {'phase':<24} {'A ms':>8} {'B ms':>8}  B ÷ A (95 %)            B faster")
    for row in rows:
        print(f"{row['line']:<24} {row['phase']:<24} {row['a']:8.2f} {row['b']:8.2f}  "
              f"×{row['ratio']:.3f} ({row['low']:.3f}–{row['high']:.3f})   {row['faster']}/{row['rounds']}")
    if options.json:
        with open(options.json, "w") as handle:
            json.dump({"a": options.a, "b": options.b, "arguments": arguments, "rounds": rounds, "summary": rows},
                      handle, indent=1)


if __name__ == "__main__":
    main()
