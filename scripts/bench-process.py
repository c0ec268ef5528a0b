#!/usr/bin/env python3
"""Whole-process speed: what a user who types `specula generate` waits for, load included.

For each prompt of the Spec-Bench tasks (the same prompts `specula bench speed --dataset spec-bench-tasks --prompts N`
picks: N spread evenly over each task), runs one `specula generate --chat --stats` process with plain decoding
(`--model T`) and one with the default mode (`--model T --draft D`), in alternating order, and times each process
from start to exit. At temperature 0 the two texts must be equal (the script stops otherwise). With
`--weight-cache both` each pair is run with the weight cache (warmed first) and without it (`SPECULA_WEIGHT_CACHE=off`,
so every process packs its models), so one run shows what the cache changes.

`--tasks humaneval` adds HumanEval's code prompts (from `--humaneval`, fetched by `scripts/fetch-models`), worded
as `specula bench speed --dataset humaneval` words them and picked the same way; it is not one of the Spec-Bench
tasks, so it stays out of the geometric mean over tasks.

Per task it prints the geometric mean of the per-prompt ratios of tokens per second (default over plain), whole
process, with a Student-t 95 % interval on the log ratios, and writes one JSON line per process to --out.

    python3 scripts/bench-process.py --specula .build/release/specula --target T.gguf --draft D.gguf \\
        --prompts 5 --max-tokens 128 --out docs/results/process.jsonl
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TASKS = {
    "mt-bench": ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"],
    "translation": ["translation"],
    "summarization": ["summarization"],
    "qa": ["qa"],
    "math": ["math_reasoning"],
    "rag": ["rag"],
}
# Not a Spec-Bench category: its prompts come from HumanEval.jsonl (`--humaneval`).
HUMANEVAL = "humaneval"


def humaneval_prompts(path):
    """HumanEval's tasks as records whose first turn is the prompt `specula bench speed` builds from them. A file
    that cannot be read, a line that is not a task, or no task at all stops the script naming the file (and line)."""
    if not os.path.exists(path):
        sys.exit(f"no such file: {path} (scripts/fetch-models humaneval fetches it)")
    records = []
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    task = json.loads(line)
                except json.JSONDecodeError as error:
                    sys.exit(f"{path}:{number}: not JSON ({error})")
                if not isinstance(task, dict) or not isinstance(task.get("prompt"), str):
                    sys.exit(f"{path}:{number}: no \"prompt\" string")
                text = "Complete the following Python function.\n\n```python\n" + task["prompt"] + "```"
                records.append({"turns": [text], "question_id": task.get("task_id", f"line{number}")})
    except (OSError, UnicodeDecodeError) as error:
        sys.exit(f"{path}: cannot be read ({error})")
    if not records:
        sys.exit(f"{path}: no HumanEval tasks in it")
    return records


def spread(records, count):
    """`count` records spread evenly over `records` (as `bench speed --prompts` picks them)."""
    n = min(max(count, 0), len(records))
    return [records[i * len(records) // n] for i in range(n)]


def run(args, prompt_file, draft, cache):
    """One `specula generate` process: (wall seconds, stats, text)."""
    command = [args.specula, "generate", "--model", args.target, "--prompt-file", prompt_file, "--chat",
               "--max-tokens", str(args.max_tokens), "--temperature", str(args.temperature), "--stats"]
    if draft:
        command += ["--draft", args.draft]
    environment = dict(os.environ)
    environment["SPECULA_WEIGHT_CACHE"] = args.cache_dir if cache else "off"
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    stats = None
    for line in reversed(result.stderr.splitlines()):
        if line.startswith("{"):
            stats = json.loads(line)
            break
    if stats is None:
        sys.exit(f"no statistics from {' '.join(command)}")
    return wall, stats, result.stdout


def interval(logs):
    """Geometric mean and Student-t 95 % interval of exp(logs)."""
    mean = sum(logs) / len(logs)
    half = benchlib.interval(logs)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specula", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--draft", required=True)
    parser.add_argument("--data", default=benchlib.DEFAULT_DATA)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS) + [HUMANEVAL])
    parser.add_argument("--humaneval", default=os.path.expanduser("~/.cache/specula/models/HumanEval.jsonl"))
    parser.add_argument("--prompts", type=int, default=5, help="prompts per task")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--weight-cache", choices=["on", "off", "both"], default="on")
    parser.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/specula/weights"))
    parser.add_argument("--out", required=True, help="JSON lines, one per process")
    args = parser.parse_args()
    if args.prompts < 1 or args.max_tokens < 1:
        sys.exit("--prompts and --max-tokens must be at least 1")
    for path in (args.specula, args.target, args.draft):
        if not os.path.exists(path):
            sys.exit(f"no such file: {path}")
    caches = {"on": [True], "off": [False], "both": [True, False]}[args.weight_cache]
    records = benchlib.load_records(args.data)
    # Read before any process runs, so that a bad file stops the script before it has spent anything.
    humaneval = humaneval_prompts(args.humaneval) if HUMANEVAL in args.tasks else []
    host = benchlib.host()
    out = open(args.out, "a")
    if True in caches:
        # Warm the cache (and the page cache) so that no timed process writes it.
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
            file.write("Hi")
        run(args, file.name, True, True)
        os.unlink(file.name)
    results = {}
    order = 0
    for task in args.tasks:
        if task == HUMANEVAL:
            prompts = spread(humaneval, args.prompts)
        else:
            prompts = spread([r for r in records if r.get("category") in TASKS[task]], args.prompts)
        for index, record in enumerate(prompts):
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
                file.write(benchlib.first_turn(record))
            for cache in caches:
                runs = {}
                for draft in ([False, True] if order % 2 == 0 else [True, False]):
                    wall, stats, text = run(args, file.name, draft, cache)
                    runs[draft] = (wall, stats, text)
                    line = {"task": task, "prompt": index, "question_id": record.get("question_id"),
                            "mode": "default" if draft else "plain", "weight_cache": cache, "wall": wall,
                            "tokens": stats["generatedTokens"], "load": stats.get("loadSeconds"),
                            "weights": stats.get("weights"), "draft_weights": stats.get("draftWeights"),
                            "generation_seconds": stats["generatedTokens"] / max(stats["tokensPerSecond"], 1e-9),
                            "max_tokens": args.max_tokens, "temperature": args.temperature, **host}
                    out.write(json.dumps(line) + "\n")
                    out.flush()
                order += 1
                plain, default = runs[False], runs[True]
                if args.temperature == 0 and plain[2] != default[2]:
                    sys.exit(f"{task} prompt {index}: the default mode's text differs from plain decoding's")
                ratio = (default[1]["generatedTokens"] / default[0]) / (plain[1]["generatedTokens"] / plain[0])
                results.setdefault((task, cache), []).append(math.log(ratio))
                print(f"{task} {index} cache={'on' if cache else 'off'}: plain {plain[0]:.2f} s, default "
                      f"{default[0]:.2f} s, {plain[1]['generatedTokens']} tokens, x{ratio:.2f}", flush=True)
            os.unlink(file.name)
    print("\ntask | weight cache | prompts | default / plain, whole process (geometric mean, Student-t 95 %)")
    for cache in caches:
        means = []
        for task in args.tasks:
            logs = results.get((task, cache), [])
            if not logs:
                continue
            mean, low, high = interval(logs)
            if task != HUMANEVAL:
                means.append(math.log(mean))
            print(f"{task} | {'on' if cache else 'off'} | {len(logs)} | x{mean:.2f} ({low:.2f}-{high:.2f})")
        if means:
            print(f"geometric mean over Spec-Bench tasks | {'on' if cache else 'off'} | | x{math.exp(sum(means) / len(means)):.2f}")


if __name__ == "__main__":
    main()
