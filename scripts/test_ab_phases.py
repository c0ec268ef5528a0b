#!/usr/bin/env python3
"""Tests of scripts/ab-phases.py: the `--phases` lines it parses (phase names with commas in them) and the paired
summary, against values computed by hand. Run: python3 scripts/test_ab_phases.py (CI runs it)."""
import importlib.util
import math
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ab_phases", os.path.join(HERE, "ab-phases.py"))
ab = importlib.util.module_from_spec(spec)
import sys  # noqa: E402

sys.path.insert(0, HERE)
spec.loader.exec_module(ab)

OUTPUT = """model: qwen2, 28 layers
decode at context 256: 29.25 tokens/s (34.2 ms)
  decode at 256 per pass (ms): gate, up products 12.59, down product 8.69, q, k, v products 2.18, attention 2.05; total 34.5
verify 8 tokens: t(8)/t(1) = 1.60 (58.4 ms)
  verify 8 per pass (ms): gate, up products 22.17, attention 5.72; total 60.2
"""


class ParseTests(unittest.TestCase):
    def test_phase_names_with_commas_and_totals(self):
        phases = ab.parse_phases(OUTPUT)
        self.assertEqual(set(phases), {"decode at 256", "verify 8"})
        self.assertEqual(phases["decode at 256"], {
            "gate, up products": 12.59, "down product": 8.69, "q, k, v products": 2.18, "attention": 2.05,
            "total": 34.5})
        self.assertEqual(phases["verify 8"], {"gate, up products": 22.17, "attention": 5.72, "total": 60.2})

    def test_no_phase_lines(self):
        self.assertEqual(ab.parse_phases("decode at context 256: 29.25 tokens/s\n"), {})


class SummaryTests(unittest.TestCase):
    def test_paired_ratio_and_interval(self):
        # B takes 0.8 and 0.9 of A in the two rounds: geometric mean √0.72; interval t(0.975, 1) = 12.706 times
        # the logs' standard error, |log 0.8 − log 0.9| / 2.
        rounds = [
            {"a": {"decode": {"attention": 10.0, "total": 40.0}}, "b": {"decode": {"attention": 8.0, "total": 40.0}}},
            {"a": {"decode": {"attention": 10.0, "total": 40.0}}, "b": {"decode": {"attention": 9.0, "total": 44.0}}},
        ]
        rows = {row["phase"]: row for row in ab.summarize(rounds)}
        attention = rows["attention"]
        self.assertAlmostEqual(attention["ratio"], math.sqrt(0.72), places=12)
        half = 12.706204736174698 * abs(math.log(0.8) - math.log(0.9)) / 2
        self.assertAlmostEqual(attention["low"], math.sqrt(0.72) * math.exp(-half), places=6)
        self.assertAlmostEqual(attention["high"], math.sqrt(0.72) * math.exp(half), places=6)
        self.assertEqual((attention["a"], attention["b"], attention["faster"]), (10.0, 8.5, 2))
        self.assertEqual(rows["total"]["faster"], 0)
        self.assertEqual([row["phase"] for row in ab.summarize(rounds)][0], "total")

    def test_a_line_missing_from_a_round_is_left_out(self):
        rounds = [
            {"a": {"x": {"total": 1.0}, "y": {"total": 2.0}}, "b": {"x": {"total": 1.0}, "y": {"total": 2.0}}},
            {"a": {"x": {"total": 1.0}}, "b": {"x": {"total": 1.0}}},
        ]
        self.assertEqual([row["line"] for row in ab.summarize(rounds)], ["x"])


if __name__ == "__main__":
    unittest.main()
