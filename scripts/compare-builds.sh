#!/usr/bin/env bash
# Compares two `specula` binaries' outputs at temperature 0 on benchmark prompts (Spec-Bench: 2 per category; HumanEval:
# 3), plain and speculative, and times each run: a refactoring must leave every output unchanged.
#   scripts/compare-builds.sh OLD_BINARY NEW_BINARY [MAX_TOKENS]
set -euo pipefail
old=$1 new=$2 tokens=${3:-64}
models=${SPECULA_MODELS:-$HOME/.cache/specula/models}
target=$models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf draft=$models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$models" "$work" <<'PY'
import json, sys, collections
models, work = sys.argv[1], sys.argv[2]
seen = collections.Counter()
prompts = []
for line in open(f"{models}/spec-bench.jsonl"):
    record = json.loads(line)
    if seen[record["category"]] < 2:
        seen[record["category"]] += 1
        prompts.append(record["turns"][0])
for index, line in enumerate(open(f"{models}/HumanEval.jsonl")):
    if index in (0, 40, 80):
        prompts.append(json.loads(line)["prompt"])
for index, prompt in enumerate(prompts):
    open(f"{work}/{index:02d}.txt", "w").write(prompt)
PY
same=0 differ=0
for file in "$work"/*.txt; do
    for mode in plain speculative; do
        args=(generate --chat --max-tokens "$tokens" --model "$target" --prompt-file "$file")
        [ "$mode" = speculative ] && args+=(--draft "$draft" --depth 5 --lookahead 2 --lookup 2)
        a=$( { /usr/bin/time -f %e "$old" "${args[@]}" 2>"$work/old.err"; } 2>&1 ); ta=$(tail -1 "$work/old.err")
        b=$( { /usr/bin/time -f %e "$new" "${args[@]}" 2>"$work/new.err"; } 2>&1 ); tb=$(tail -1 "$work/new.err")
        if [ "$a" = "$b" ]; then same=$((same + 1)); verdict=same; else differ=$((differ + 1)); verdict=DIFFERENT; fi
        echo "$(basename "$file") $mode: $verdict (old ${ta}s, new ${tb}s)"
    done
done
echo "$same same, $differ different"
[ "$differ" -eq 0 ]
