#!/usr/bin/env python3
"""Tests of scripts/beside-llama.py (CI runs them).

1. From the committed records of the 2026-12-04 run it must print the rows of the table results.md has shown since
   then (rendered by hand from the same records before the script existed, so the two are independent).
2. On small made-up records: the best llama.cpp mode is the one with the highest median ratio to its own plain
   decoding, plain when nothing beats it; the won count and the geometric mean follow the per-prompt ratios; prompts
   missing from either record and other temperatures are left out.
"""
import importlib.util
import json
import math
import os
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
spec = importlib.util.spec_from_file_location("beside_llama", os.path.join(here, "beside-llama.py"))
beside = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beside)

failures = 0


def check(condition, message):
    global failures
    if not condition:
        failures += 1
        print("FAIL:", message)


def committed_table():
    results = os.path.join(here, "..", "docs", "results")
    lines = beside.table(
        os.path.join(results, "llama-spec-bench-10.jsonl"), os.path.join(results, "spec-bench-beside-llama-10.jsonl")
    )
    with open(os.path.join(here, "..", "docs", "results.md")) as handle:
        document = handle.read()
    start = document.index("### Beside llama.cpp, 10 prompts per task (2026-12-04 evening)")
    section = document[start : document.index("\n### ", start + 10)]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    printed = [line for line in lines[2:] if line.startswith("| ")]
    check(len(rows) == 6, f"results.md's table has {len(rows)} rows")
    for shown, computed in zip(rows, printed):
        # results.md names the RAG row by its prompt count; every other cell must match.
        shown_cells = shown.split(" | ")[1:]
        computed_cells = computed.split(" | ")[1:]
        check(shown_cells == computed_cells, f"row differs:\n  results.md {shown}\n  script     {computed}")
    check(lines[-1] == "All prompts: ×1.31 (1.23–1.40), Specula won 48 of 54.", lines[-1])


def made_up_table():
    def llama(task, prompt, plain, draft, ngram, temperature=0.0):
        run = lambda rate: {"seconds": 10.0, "tokens": rate * 10}  # noqa: E731
        return {
            "task": task,
            "id": prompt,
            "temperature": temperature,
            "plain": run(plain),
            "draft:4": run(draft),
            "ngram": run(ngram),
        }

    def ours(task, prompt, plain, default, temperature="0"):
        return {
            "configuration": f"{task} T={temperature}",
            "prompt": str(prompt),
            "metrics": {"plain|tokensPerSecond": [plain], "adaptive greedy|tokensPerSecond": [default]},
        }

    llama_records = [
        # math: the draft mode gains ×1.2 and ×1.5 over llama.cpp's plain, n-gram ×1.1 twice: draft is best.
        llama("math", 1, 10, 12, 11),
        llama("math", 2, 20, 30, 22),
        # qa: nothing beats plain.
        llama("qa", 1, 10, 9, 10),
        llama("qa", 2, 10, 8, 9),
        # a prompt Specula did not run, and another temperature: both left out.
        llama("qa", 3, 1, 1, 1),
        llama("math", 1, 1000, 1000, 1000, temperature=0.7),
    ]
    specula_records = [
        ours("math", 1, 9, 18),  # ÷ 12 = 1.5
        ours("math", 2, 19, 24),  # ÷ 30 = 0.8
        ours("qa", 1, 11, 12),  # ÷ 10 = 1.2
        ours("qa", 2, 11, 15),  # ÷ 10 = 1.5
        ours("qa", 1, 50, 50, temperature="0.7"),
    ]
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for name, records in (("llama.jsonl", llama_records), ("specula.jsonl", specula_records)):
            path = os.path.join(directory, name)
            with open(path, "w") as handle:
                for record in records:
                    handle.write(json.dumps(record) + "\n")
            paths.append(path)
        lines = beside.table(*paths)
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line}
    math_row, qa_row = rows.get("math"), rows.get("question answering")
    check(math_row is not None and qa_row is not None, f"rows: {lines}")
    if math_row and qa_row:
        check(math_row[3] == "draft, n-max 4", f"math best mode {math_row[3]}")
        check(math_row[4] == "×1.35", f"math best ratio {math_row[4]}")
        check(math_row[7] == "1/2 |", f"math won {math_row[7]}")
        expected = math.sqrt(1.5 * 0.8)
        check(math_row[6].startswith(f"×{expected:.2f} ("), f"math mean {math_row[6]}")
        check(qa_row[3] == "plain" and qa_row[4] == "×1.00", f"qa best {qa_row[3]} {qa_row[4]}")
        check(qa_row[7] == "2/2 |", f"qa won {qa_row[7]}")
        check(qa_row[1] == "11.0" and qa_row[2] == "10.0", f"qa plain rates {qa_row[1]} {qa_row[2]}")
    check(lines[-1].endswith("Specula won 3 of 4."), lines[-1])


committed_table()
made_up_table()
if failures:
    print(f"test_beside_llama: {failures} failures")
    sys.exit(1)
print("test_beside_llama: the committed table and the made-up cases agree")
