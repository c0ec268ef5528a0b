#!/usr/bin/env python3
"""scripts/check-results.py can fail: docs/results.md as committed passes, and a copy with one printed number moved
by one unit of its last digit — in each kind of table the script recomputes — fails, naming that cell.

    python3 scripts/test_check_results.py

Standard library only; reads docs/results.md and the records under docs/results/ (CI runs it).
"""

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "scripts", "check-results.py")
DOCUMENT = os.path.join(ROOT, "docs", "results.md")

# (what the cell is, the start of its row, its column (0 = the row label), which number in the cell to move, text the
# script's report of the mismatch must contain)
MUTATIONS = [
    ("temperature table: an acceptance mean", "| single-draft acceptance (token, n = 1) | 0.7 |", 2, 0,
     "single-draft acceptance"),
    ("temperature table: a half-width", "| single-draft acceptance (token, n = 1) | 0.7 |", 3, 1,
     "single-draft acceptance"),
    ("block table: tokens per step", "| MT-Bench | 0.6 | 2 |", 3, 0, "MT-Bench T=0.6 γ=2"),
    ("block table: the paired wall-clock difference", "| MT-Bench | 0.6 | 2 |", 8, 1, "MT-Bench T=0.6 γ=2"),
    ("paired speed table: a ratio's upper end", "| HumanEval | 0 | ×2.02", 4, 2, "ngram vs suffix, HumanEval"),
    ("tree wall clock: a verifier's mean", "| binary:3 | 0.6 |", 2, 0, "trees wall clock binary:3"),
    ("tree wall clock: a paired difference", "| binary:4 | 0.6 |", 5, 0, "trees wall clock binary:4"),
    ("tree wall clock: the bracketed difference with α* left in", "| binary:2 | 0.6 |", 7, 2,
     "trees wall clock binary:2"),
    ("first small runs: an acceptance cell", "| rrs | 0.761 ± 0.212 (3 × 89)", 1, 0, "rrs ["),
]

NUMBER = re.compile(r"\d+\.\d+")


def moved(text, which):
    """`text` with its `which`-th decimal number moved up by one unit of its last digit (9 → 8 instead)."""
    match = list(NUMBER.finditer(text))[which]
    number = match.group(0)
    last = int(number[-1])
    changed = number[:-1] + str(last + 1 if last < 9 else last - 1)
    return text[: match.start()] + changed + text[match.end():]


def mutate(document, row_start, column, which):
    lines = document.split("\n")
    for index, line in enumerate(lines):
        if line.startswith(row_start):
            cells = line.split("|")
            # cells[0] is the empty text before the first bar, so column k is cells[k + 1].
            cells[column + 1] = moved(cells[column + 1], which)
            lines[index] = "|".join(cells)
            return "\n".join(lines), line, lines[index]
    raise SystemExit(f"test_check_results: no row starting {row_start!r} in docs/results.md")


def check(path):
    result = subprocess.run([sys.executable, SCRIPT, "--document", path], capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def main():
    with open(DOCUMENT, encoding="utf-8") as file:
        document = file.read()
    failures = []
    code, output = check(DOCUMENT)
    if code != 0:
        failures.append(f"docs/results.md as committed does not pass:\n{output}")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "results.md")
        for name, row_start, column, which, expected in MUTATIONS:
            text, before, after = mutate(document, row_start, column, which)
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
            code, output = check(path)
            problems = [line for line in output.splitlines() if line.startswith("  ")]
            if code == 0 or len(problems) != 1 or expected not in problems[0]:
                failures.append(f"{name}: changing\n    {before}\nto\n    {after}\nwas not reported as one problem "
                                f"naming {expected!r} (exit {code}):\n{output}")
            else:
                print(f"ok   {name}: {problems[0].strip()}")
    for failure in failures:
        print("FAIL " + failure)
    print(f"test_check_results: {len(MUTATIONS)} mutations, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
