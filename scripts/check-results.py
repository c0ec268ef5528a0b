#!/usr/bin/env python3
"""Recompute the acceptance and block-verification tables of docs/results.md from their records, and check the
document against them.

Every number in the tables of "The papers' claims beside ours" that comes from an acceptance run (the temperature
tables, the weaker-draft and noisy-draft tables) is a mean over prompts of a per-prompt mean over positions, ± a
Student-t 95 % half-width over the prompt means (prompts − 1 degrees of freedom); a difference is taken position by
position first (the same target continuation and draft vectors on both sides), so it is paired. This script reads the
records (docs/results/hu, hu-weak, hu-noise: one JSON line per prompt and setting, one value per position and
verifier/bound), computes each cell that way, parses the tables in docs/results.md, and reports any cell whose
printed value or half-width differs from the recomputed one by more than half a unit of its last printed digit.

The paired speed tables (header `task | T | A ÷ plain | B ÷ plain | A ÷ B (paired) | tokens per call, …`) are
recomputed from docs/results/<directory>/speed.jsonl by scripts/paired-methods.py's own functions (geometric means of
per-prompt tokens-per-second ratios with Student-t 95 % intervals on the logs, and the mean difference of tokens per
call); `PAIRED_SPEED` names each table's directory by its two methods.

The block-verification table (header `dataset | T | γ | token: E[tokens/step] | …`) is recomputed from
docs/results/block-40 (MT-Bench) and block-40-<dataset>: per prompt, the exact expected tokens per step of each
verifier for the round's drafts (`pairedToken`, `pairedBlock`, `pairedGain`) pooled over the prompt's token and block
runs; wall clock (`tokensPerSecond`) per verifier, and block − token per prompt; each a mean over prompts ±
Student-t 95 %.

The tree wall-clock tables (header `tree | T | RRS | RRSw | SpecHub | SpecHub − RRSw | … | host`) are recomputed
from docs/results/spechub-wall (host Xeon) and spechub-wall-epyc (host EPYC): each verifier's wall-clock tokens/s with
the α* telemetry left out, mean over prompts ± Student-t 95 %, and the differences paired by prompt, each with the
same difference with the telemetry left in in brackets.

The tables of the first small runs (`EARLY_SECTIONS`: the default run's acceptance, trees, block and speed tables,
the n = 4 run, the paired-block run and the later speed runs, 2–8 prompts per cell) have every "mean ± half" cell
recomputed from their records the same way, with the cell's size in parentheses; this script writes those cells
(--write) and checks them as text.

    python3 scripts/check-results.py            # check docs/results.md; exit 1 on a mismatch
    python3 scripts/check-results.py --print    # print every cell it recomputed

Standard library and scripts/benchlib.py (its Student-t quantile) only; CI runs it.
"""

import argparse
import functools
import importlib.util
import json
import math
import os
import re
import sys

from benchlib import interval

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "docs", "results")

# Column headers of the tables → the dataset's name in the records' configuration.
DATASETS = {
    "translation": "translation",
    "AlpacaEval": "alpaca",
    "HumanEval": "humaneval",
    "summarization": "summarization",
    "GSM8K": "math",
    "MT-Bench": "mt-bench",
}

# Row labels → (minuend, subtrahend or None, drafts n). Keys of the records' metrics are "<name>@<n>".
QUANTITIES = [
    (r"^single-draft acceptance", ("token", None, 1)),
    (r"^α\*_wo − α\*_w$", ("α* withoutReplacement", "α* withReplacement", 2)),
    (r"^α\*_w − RRS$", ("α* withReplacement", "rrs", 2)),
    (r"^α\*_wo − RRSw$", ("α* withoutReplacement", "rrsw", 2)),
    (r"^greedy \(= SpecHub.*\) − RRSw$", ("greedy", "rrsw", 2)),
    (r"^RRSw − RRS$", ("rrsw", "rrs", 2)),
    (r"^α\*_greedy − α\*_wo, n = 3$", ("α* greedy", "α* withoutReplacement", 3)),
    (r"^α\*_greedy − α\*_wo$", ("α* greedy", "α* withoutReplacement", 2)),
    (r"^SpecHub − RRS \(from the means\)$", ("spechub", "rrs", 2)),
]


def summary(values):
    """Mean ± Student-t 95 % half-width of `values` (one per prompt; nan for one), and their number."""
    return sum(values) / len(values), interval(values), len(values)


class Records:
    """Per-prompt metric arrays of one acceptance run's jsonl, by configuration."""

    def __init__(self, path):
        self.by_configuration = {}
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                record = json.loads(line)
                self.by_configuration.setdefault(record["configuration"], {})[record["prompt"]] = record["metrics"]

    def cell(self, configuration, quantity):
        minuend, subtrahend, n = quantity
        prompts = self.by_configuration.get(configuration)
        if not prompts:
            return None
        means = []
        for metrics in prompts.values():
            a = metrics.get(f"{minuend}@{n}")
            if a is None:
                return None
            b = metrics.get(f"{subtrahend}@{n}") if subtrahend else [0.0] * len(a)
            pairs = [x - y for x, y in zip(a, b) if x is not None and y is not None]
            if pairs:
                means.append(sum(pairs) / len(pairs))
        return summary(means) if means else None

    def column(self, configuration, name):
        """Metric `name` of one configuration: the mean over prompts of each prompt's mean over its positions ±
        Student-t 95 %, the number of prompts, and each prompt's number of positions; None without values."""
        means, counts = [], []
        for metrics in (self.by_configuration.get(configuration) or {}).values():
            values = [v for v in metrics.get(name) or [] if v is not None]
            if values:
                means.append(sum(values) / len(values))
                counts.append(len(values))
        if not means:
            return None
        mean, half, prompts = summary(means)
        return mean, half, prompts, counts


NUMBER = r"([+\-−]?\d+\.\d+)"
CELL = re.compile(NUMBER + r"(?:\s*±\s*" + NUMBER + r")?")


def parse_number(text):
    return float(text.replace("−", "-"))


def decimals(text):
    return len(text.split(".")[1])


def quantity_of(label):
    for pattern, quantity in QUANTITIES:
        if re.search(pattern, label):
            return quantity
    return None


def split_row(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(document):
    """Markdown tables as (header cells, rows of cells), in document order."""
    block = []
    for line in document.splitlines() + [""]:
        if line.startswith("|"):
            block.append(split_row(line))
        elif block:
            if len(block) >= 3:
                yield block[0], block[2:]
            block = []


def columns(header, row):
    """The ((run, configuration), cell text) pairs of a row of a known table, or [] for any other table."""
    out = []
    if len(header) >= 3 and header[1] == "T" and all(h in DATASETS for h in header[2:]):
        # Temperature tables: quantity | T | datasets…
        temperature = row[1]
        for name, text in zip(header[2:], row[2:]):
            out.append((("hu", f"{DATASETS[name]} T={temperature}"), text))
    elif header[0].startswith("quantity (n = 2), ") and header[0].split(", ", 1)[1] in DATASETS:
        # One dataset's weakening: ×1 (the hu run) | ×f | … or σ = 0 | σ = s | …
        dataset = DATASETS[header[0].split(", ", 1)[1]]
        for name, text in zip(header[1:], row[1:]):
            if name in ("×1", "σ = 0"):
                out.append((("hu", f"{dataset} T=0.7"), text))
            elif name.startswith("×"):
                out.append((("hu-weak", f"{dataset} T=0.7 draft{name}"), text))
            elif name.startswith("σ = "):
                out.append((("hu-noise", f"{dataset} T=0.7 noise={name[4:]}"), text))
    elif header[0] == "quantity (n = 2)" and all(h.startswith("×") or " ×" in h for h in header[1:]):
        # Several datasets' weakening: "translation ×1 | ×1.5 | ×2 | AlpacaEval ×1 | …" (a bare factor is the
        # dataset to its left's).
        dataset = None
        for name, text in zip(header[1:], row[1:]):
            if name.startswith("×"):
                factor = name[1:]
            else:
                dataset, factor = name.rsplit(" ×", 1)
            if dataset not in DATASETS:
                return []
            run = ("hu", f"{DATASETS[dataset]} T=0.7") if factor == "1" else (
                "hu-weak", f"{DATASETS[dataset]} T=0.7 draft×{factor}")
            out.append((run, text))
    return out


# The tables of the first small runs (2–8 prompts per cell): the section they stand in (its `###` heading, and a
# pattern for the `####` heading above the table where one section holds several runs) → their records in
# docs/results/. Each "mean ± half" cell of them is recomputed from the records as the bench computes it now (mean
# over prompts ± Student-t 95 %, prompts − 1 degrees of freedom) with its size in parentheses; these cells are
# written by this script (--write) and checked as text. Medians and ratios of medians are left as printed.
EARLY_SECTIONS = [
    ("### Acceptance (Hu et al.'s protocol)", r"^#### (\S+), T=(\S+)$", "acceptance.jsonl"),
    ("### Acceptance with n = 4", r"^#### n = 4 run: (\S+), T=(\S+)$", "acceptance-n4.jsonl"),
    ("### Trees: tokens per target call", r"^#### (\S+), T=(\S+)$", "trees.jsonl"),
    ("### Block vs token verification", None, "block.jsonl"),
    ("### Block vs token verification, paired", None, "block-paired.jsonl"),
    ("### Speed: plain vs speculative, side by side", r"^#### (\S+), T=(\S+)$", "speed.jsonl"),
    ("### Speed with draft lookahead and lookup rounds", r"^#### (\S+), T=(\S+)$", "speed-lookahead.jsonl"),
    ("### Speed with draft lookahead and lookup rounds", r"^#### variants: (\S+), T=(\S+)$",
     "speed-lookahead-variants.jsonl"),
    ("### Speed after the kernel work (third session)", r"^#### (\S+), T=(\S+) \(5 prompts\)$", "speed-kernels.jsonl"),
    ("### Speed after the kernel work (third session)", r"^#### (\S+), T=(\S+) \(8 prompts\)$", "speed-kernels-8.jsonl"),
]
# In the first acceptance runs RRSw at n ≥ 2 is a Monte-Carlo estimate, EARLY_SAMPLES draft tuples per position; its
# cells carry a bound on their Monte-Carlo standard error.
EARLY_SAMPLES = 200
BLOCK_UNPAIRED_HEADER = ["dataset", "T", "γ", "token: tokens/step", "block: tokens/step", "gain", "token: tokens/s",
                         "block: tokens/s", "gain"]
BLOCK_PAIRED_HEADER = ["dataset", "T", "γ", "token: E[tokens/step]", "block: E[tokens/step]", "block gain"]


def minus(text):
    return text.replace("-", "−")


def early_value(records, configuration, name, digits):
    """"mean ± half (prompts)" of a per-prompt metric, or "—" where the run has none."""
    computed = records.column(configuration, name)
    if computed is None:
        return "—"
    mean, half, prompts, _ = computed
    return f"{mean:.{digits}f} ± {half:.{digits}f} ({prompts})"


def acceptance_cell(records, configuration, label, n):
    """One cell of an early acceptance table: "mean ± half (prompts × positions)", "—" where the run has none."""
    computed = records.column(configuration, f"{label}@{n}")
    if computed is None:
        return "—"
    mean, half, prompts, counts = computed
    text = f"{mean:.3f} ± {half:.3f} ({prompts} × {sum(counts)}"
    if label == "rrsw" and n >= 2:
        # A position's estimate is the mean of EARLY_SAMPLES values in [0, 1], so its variance is at most
        # 1 / (4 · EARLY_SAMPLES); a prompt's mean over m positions at most that over m; the cell, a mean of
        # independent prompt means, at most the sum over prompts divided by prompts².
        bound = math.sqrt(sum(1 / (4 * EARLY_SAMPLES * m) for m in counts)) / prompts
        text += f"; Monte Carlo, standard error ≤ {bound:.3f}"
    return text + ")"


@functools.lru_cache(maxsize=None)
def records_of(kind, path):
    """A records file read once."""
    return kind(path)


def early_row(path, configuration, header, row):
    """A row of an early table rewritten from its records (`configuration`: "<dataset> T=<t>", or None in the block
    sections), or None where the table has no interval to recompute."""
    name = os.path.basename(path)
    if header[0] == "verifier / bound" and name.startswith("acceptance"):
        records = records_of(Records, path)
        return [row[0]] + [acceptance_cell(records, configuration, row[0], int(h[len("n = "):])) for h in header[1:]]
    if header[:2] == ["tree", "nodes"]:
        records = records_of(Records, path)
        return row[:2] + [early_value(records, f"{configuration} {row[0]} {verifier}", "tokensPerCall", 2)
                          for verifier in header[2:]]
    if header[0] == "tree" and all(h.startswith("a") and h[1:].isdigit() for h in header[1:]):
        records = records_of(Records, path)
        return row[:1] + [early_value(records, f"{configuration} {row[0]}", h, 3) for h in header[1:]]
    if header[0] == "method" and "tokens/call" in header and "acceptance" in header and row[0] != "plain":
        records = records_of(Records, path)
        out = list(row)
        for column, metric in ((header.index("tokens/call"), "tokensPerCall"), (header.index("acceptance"), "acceptance")):
            out[column] = early_value(records, configuration, f"{row[0]}|{metric}", 2)
        return out
    if header == BLOCK_UNPAIRED_HEADER:
        records = records_of(Records, path)
        prefix = f"{row[0]} {row[1]} chain:{row[2]}"
        out = row[:3]
        for metric, digits in (("tokensPerCall", 2), ("tokensPerSecond", 1)):
            both = [records.column(f"{prefix} {verifier}", metric) for verifier in ("token", "block")]
            if None in both:
                out += ["—"] * 3
                continue
            out += [f"{c[0]:.{digits}f} ± {c[1]:.{digits}f} ({c[2]})" for c in both]
            out.append(minus(f"{100 * (both[1][0] / both[0][0] - 1):+.1f} %"))
        return out
    if header == BLOCK_PAIRED_HEADER:
        computed = records_of(BlockRecords, path).cells(f"{row[0]} {row[1]} chain:{row[2]}")
        if computed is None:
            return row[:3] + ["—"] * 3
        token, block, gain = computed[:3]
        return row[:3] + [f"{token[0]:.3f} ± {token[1]:.3f} ({token[2]})", f"{block[0]:.3f} ± {block[1]:.3f} ({block[2]})",
                          minus(f"{gain[0]:+.2f} % ± {gain[1]:.2f} ({gain[2]})")]
    return None


def early_rows(lines):
    """(line index, label, the row recomputed from its records or None, problem or None) for every row of a table of
    the first small runs that has intervals."""
    h3 = h4 = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            h3 = h4 = None
        elif line.startswith("### "):
            h3, h4 = line.strip(), None
        elif line.startswith("#### "):
            h4 = line.strip()
        elif line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            header, j = split_row(line), i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            for title, pattern, name in EARLY_SECTIONS:
                match = re.match(pattern, h4 or "") if pattern else None
                if title != h3 or (pattern and not match):
                    continue
                configuration = f"{match.group(1)} T={match.group(2)}" if match else None
                path = os.path.join(RESULTS, name)
                for index in range(i + 2, j):
                    row = split_row(lines[index])
                    label = f"{row[0]} [{h4 or h3}; {name}]"
                    try:
                        cells = early_row(path, configuration, header, row)
                    except (OSError, ValueError, KeyError) as error:
                        yield index, label, None, f"{label}: cannot recompute ({error})"
                        continue
                    if cells is not None:
                        yield index, label, "| " + " | ".join(cells) + " |", None
                break
            i = j
            continue
        i += 1


# Block table: dataset column → (records directory, the dataset's name in the configuration).
BLOCK_DATASETS = {
    "MT-Bench": ("block-40", "mt-bench"),
    "GSM8K": ("block-40-math", "math"),
    "translation": ("block-40-translation", "translation"),
    "summarization": ("block-40-summarization", "summarization"),
}
BLOCK_HEADER = ["dataset", "T", "γ", "token: E[tokens/step]", "block: E[tokens/step]", "block gain (paired)",
                "token: tokens/s", "block: tokens/s", "block − token tokens/s (paired by prompt)", "host"]


class BlockRecords:
    """One block run's records: metrics by (configuration, prompt)."""

    def __init__(self, path):
        self.metrics = {}
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    record = json.loads(line)
                    self.metrics[(record["configuration"], record["prompt"])] = record["metrics"]

    def prompts(self, configuration):
        return sorted(p for c, p in self.metrics if c == configuration)

    def cells(self, prefix):
        """The table's six computed cells for configurations `prefix token` / `prefix block`, or None."""
        token, block = f"{prefix} token", f"{prefix} block"
        both = sorted(set(self.prompts(token)) & set(self.prompts(block)))
        if not both:
            return None

        def mean_value(metrics, name):
            values = metrics.get(name) or []
            return sum(values) / len(values) if values else None

        def pooled(name):
            # Both runs of a prompt form one group: the mean of their values.
            means = []
            for prompt in both:
                values = (self.metrics[(token, prompt)].get(name) or []) + (self.metrics[(block, prompt)].get(name) or [])
                if values:
                    means.append(sum(values) / len(values))
            return summary(means)

        def each(configuration, name):
            return summary([mean_value(self.metrics[(configuration, p)], name) for p in self.prompts(configuration)])

        gain = pooled("pairedGain")
        return [pooled("pairedToken"), pooled("pairedBlock"), (100 * gain[0], 100 * gain[1], gain[2]),
                each(token, "tokensPerSecond"), each(block, "tokensPerSecond"),
                summary([mean_value(self.metrics[(block, p)], "tokensPerSecond")
                         - mean_value(self.metrics[(token, p)], "tokensPerSecond") for p in both])]


def block_cells(header, row, block_runs):
    """(label, printed text, computed (mean, half, prompts)) for every number cell of a block-table row."""
    if header != BLOCK_HEADER:
        return None
    name, temperature, gamma = row[0], row[1], row[2]
    if name not in BLOCK_DATASETS:
        return [(f"{name} T={temperature} γ={gamma}", row[0], None)]
    directory, dataset = BLOCK_DATASETS[name]
    records = block_runs.get(directory)
    label = "T=" + ("%g" % float(temperature))
    computed = records.cells(f"{dataset} {label} chain:{gamma}") if records else None
    where = f"{name} {label} γ={gamma}"
    return [(f"{where} {column}", text, computed[k] if computed else None)
            for k, (column, text) in enumerate(zip(header[3:-1], row[3:-1]))]


# Tree wall-clock tables (header TREE_WALL_HEADER): the host column → the records directory
# (docs/results/<directory>/trees.jsonl). A row is one tree shape at one temperature; each verifier's cell is its
# wall-clock tokens/s with the α* telemetry left out (`tokensPerSecond`), mean over prompts ± Student-t 95 %; each
# difference is paired by prompt (the verifiers of a prompt ran one after another), and its bracket is the same
# difference with the telemetry left in (`tokens / seconds`, as the runs before 2026-12-06 measured it).
TREE_WALL_DIRECTORIES = {"Xeon": "spechub-wall", "EPYC": "spechub-wall-epyc"}
TREE_WALL_VERIFIERS = {"RRS": "rrs", "RRSw": "rrsw", "SpecHub": "spechub"}
TREE_WALL_HEADER = ["tree", "T", "RRS", "RRSw", "SpecHub", "SpecHub − RRSw", "RRSw − RRS", "SpecHub − RRS", "host"]
BRACKET = re.compile(r"\(" + NUMBER + r"\s*±\s*" + NUMBER + r"\)")


def tree_wall_cells(header, row, tree_runs):
    """(label, ok) for every number cell of a tree wall-clock row, or None for any other table."""
    if header != TREE_WALL_HEADER:
        return None
    shape, temperature, host = row[0], row[1], row[-1]
    label = f"trees wall clock {shape} T={temperature} {host}"
    records = tree_runs.get(TREE_WALL_DIRECTORIES.get(host))
    if records is None:
        return [(f"{label}: no records for host {host!r}", False)]
    prefix = f"mt-bench T={'%g' % float(temperature)} {shape}"

    def per_prompt(name, raw=False):
        out = {}
        for prompt, metrics in (records.by_configuration.get(f"{prefix} {TREE_WALL_VERIFIERS[name]}") or {}).items():
            if raw:
                out[prompt] = metrics["tokens"][0] / metrics["seconds"][0]
            else:
                out[prompt] = metrics["tokensPerSecond"][0]
        return out

    out = []
    for column, text in zip(header[2:5], row[2:5]):
        values = per_prompt(column)
        if text.strip() == "—":
            out.append((f"{label} {column}: printed —, records {len(values)} prompts", not values))
            continue
        computed = summary(list(values.values())) if len(values) >= 2 else None
        out.append((f"{label} {column}: printed {text}, records "
                    + (f"{computed[0]:.2f} ± {computed[1]:.2f} ({computed[2]} prompts)" if computed else "none"),
                    check_cell(text, computed)))
    for column, text in zip(header[5:8], row[5:8]):
        a, b = column.split(" − ")
        cells = []
        for raw in (False, True):
            left, right = per_prompt(a, raw), per_prompt(b, raw)
            both = sorted(set(left) & set(right))
            cells.append(summary([left[p] - right[p] for p in both]) if len(both) >= 2 else None)
        if text.strip() == "—":
            out.append((f"{label} {column}: printed —", cells[0] is None))
            continue
        bracket = BRACKET.search(text)
        ok = check_cell(text, cells[0]) and bracket is not None and cells[1] is not None and check_cell(
            f"{bracket.group(1)} ± {bracket.group(2)}", cells[1])
        out.append((f"{label} {column}: printed {text}, records "
                    + (f"{cells[0][0]:+.2f} ± {cells[0][1]:.2f} ({cells[1][0]:+.2f} ± {cells[1][1]:.2f}), "
                       f"{cells[0][2]} prompts" if cells[0] and cells[1] else "none"), ok))
    return out


# Paired speed tables (header `task | T | A ÷ plain | B ÷ plain | … (paired) | tokens per call, …`): the two
# methods → the records directory (docs/results/<directory>/speed.jsonl); task labels → the records' dataset names.
PAIRED_SPEED = {("adaptive", "adaptive+trees:0"): "adaptive-suffix", ("ngram", "suffix"): "suffix"}
SPEED_TASKS = {"HumanEval": "humaneval", "summarization": "summarization", "MT-Bench": "mt-bench"}
RATIO = re.compile(r"×(\d+\.\d+) \((\d+\.\d+)–(\d+\.\d+)\)")


def paired_methods():
    """scripts/paired-methods.py as a module (its file name is not an identifier)."""
    spec = importlib.util.spec_from_file_location(
        "paired_methods", os.path.join(ROOT, "scripts", "paired-methods.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speed_cells(header, row, module):
    """(label, ok) for every number cell of a paired speed-table row, or None for any other table."""
    if len(header) != 6 or header[:2] != ["task", "T"] or not header[5].startswith("tokens per call"):
        return None
    if not (header[2].endswith(" ÷ plain") and header[3].endswith(" ÷ plain") and "(paired)" in header[4]):
        return None
    a, b = header[2][: -len(" ÷ plain")], header[3][: -len(" ÷ plain")]
    directory = PAIRED_SPEED.get((a, b))
    label = f"{a} vs {b}, {row[0]} T={row[1]}"
    if directory is None or row[0] not in SPEED_TASKS:
        return [(label + ": no records named for this table", False)]
    values = module.paired_rows(os.path.join(RESULTS, directory, "speed.jsonl"), a, b).get(
        f"{SPEED_TASKS[row[0]]} T={row[1]}")
    if not values:
        return [(label + ": no records", False)]
    # The paired column is A ÷ B unless its header names B first (then B ÷ A, and the difference of tokens per
    # call is B − A).
    sign = -1 if header[4].startswith(f"{b} ÷ {a}") else 1
    out = []
    for column, text in enumerate(row[2:5]):
        match = RATIO.fullmatch(text.strip())
        mean, half = module.mean_interval([(sign if column == 2 else 1) * math.log(v[column]) for v in values])
        computed = (math.exp(mean), math.exp(mean - half), math.exp(mean + half))
        ok = match is not None and all(abs(float(match.group(k + 1)) - computed[k]) <= 0.005 + 1e-12 for k in range(3))
        out.append((f"{label} {header[2 + column]}: printed {text}, records ×{computed[0]:.3f} "
                    f"({computed[1]:.3f}–{computed[2]:.3f}, {len(values)} prompts)", ok))
    diff, half = module.mean_interval([sign * (ca - cb) for _, _, _, (ca, cb) in values])
    out.append((f"{label} tokens per call: printed {row[5]}, records {diff:+.3f} ± {half:.3f}",
                check_cell(row[5], (diff, half, len(values)))))
    return out


def check_cell(text, computed):
    """Whether a printed "mean ± half" (a trailing " %" and size note allowed) matches `computed`."""
    match = CELL.match(text.replace(" %", "").strip())
    if match is None or computed is None:
        return False
    mean, half, _ = computed
    ok = abs(parse_number(match.group(1)) - mean) <= 0.5 * 10 ** -decimals(match.group(1)) + 1e-12
    if match.group(2):
        ok = ok and abs(parse_number(match.group(2)) - half) <= 0.5 * 10 ** -decimals(match.group(2)) + 1e-12
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--document", default=os.path.join(ROOT, "docs", "results.md"))
    parser.add_argument("--print", action="store_true", help="print every recomputed cell")
    parser.add_argument("--write", action="store_true",
                        help="rewrite the interval cells of the first small runs' tables from their records, then check")
    args = parser.parse_args()

    def load(kind, directories, name):
        """The result logs `directory/name` that exist, read by `kind`."""
        logs = {}
        for directory in directories:
            path = os.path.join(RESULTS, directory, name)
            if os.path.exists(path):
                try:
                    logs[directory] = kind(path)
                except (ValueError, KeyError) as error:
                    sys.exit(f"check-results: {path}: not a result log ({error})")
        return logs

    runs = load(Records, ("hu", "hu-weak", "hu-noise"), "acceptance.jsonl")
    block_runs = load(BlockRecords, [directory for directory, _ in BLOCK_DATASETS.values()], "block.jsonl")
    tree_runs = load(Records, TREE_WALL_DIRECTORIES.values(), "trees.jsonl")
    try:
        with open(args.document, encoding="utf-8") as file:
            document = file.read()
    except OSError as error:
        sys.exit(f"check-results: cannot read --document {args.document}: {error.strerror}")

    checked, mismatches, unknown = 0, [], []
    lines = document.split("\n")
    if args.write:
        for index, _, text, _ in list(early_rows(lines)):
            if text is not None:
                lines[index] = text
        document = "\n".join(lines)
        with open(args.document, "w", encoding="utf-8") as file:
            file.write(document)
    for index, label, text, problem in early_rows(lines):
        checked += 1
        ok = problem is None and lines[index] == text
        line = problem or f"{label}: printed {lines[index]!r}, records {text!r}"
        if args.print:
            print(("ok   " if ok else "DIFF ") + line)
        if not ok:
            mismatches.append(line)
    speed_module = paired_methods()
    for header, rows in tables(document):
        for row in rows:
            try:
                speed = speed_cells(header, row, speed_module)
            except (OSError, ValueError, KeyError) as error:
                speed = [(f"{row[0]} T={row[1]}: cannot read the speed records ({error})", False)]
            # Speed and tree wall-clock rows come as (report line, ok) pairs.
            judged = speed if speed is not None else tree_wall_cells(header, row, tree_runs)
            if judged is not None:
                for line, ok in judged:
                    checked += 1
                    if args.print:
                        print(("ok   " if ok else "DIFF ") + line)
                    if not ok:
                        mismatches.append(line)
                continue
            cells = block_cells(header, row, block_runs)
            if cells is not None:
                for label, text, computed in cells:
                    ok = check_cell(text, computed)
                    checked += 1
                    line = f"{label}: printed {text}, records " + (
                        f"{computed[0]:+.5f} ± {computed[1]:.5f} ({computed[2]} prompts)" if computed else "none")
                    if args.print:
                        print(("ok   " if ok else "DIFF ") + line)
                    if not ok:
                        mismatches.append(line)
                continue
            quantity = quantity_of(row[0])
            cells = columns(header, row)
            if not cells:
                break
            if quantity is None:
                unknown.append(row[0])
                continue
            for (run, configuration), text in cells:
                match = CELL.fullmatch(text.strip())
                records = runs.get(run)
                computed = records.cell(configuration, quantity) if records else None
                if match is None or computed is None:
                    mismatches.append(f"{row[0]} [{configuration}, {run}]: '{text}' — no records or no number")
                    continue
                mean, half, prompts = computed
                ok = check_cell(text, computed)
                checked += 1
                line = f"{row[0]} [{configuration}, {run}]: printed {text}, records {mean:+.5f} ± {half:.5f} ({prompts} prompts)"
                if args.print:
                    print(("ok   " if ok else "DIFF ") + line)
                if not ok:
                    mismatches.append(line)
    for label in unknown:
        mismatches.append(f"a row this script cannot recompute: '{label}'")
    print(f"check-results: {checked} cells of docs/results.md recomputed from the records; {len(mismatches)} problems")
    for problem in mismatches:
        print("  " + problem)
    return 1 if mismatches or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
