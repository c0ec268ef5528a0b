#!/usr/bin/env python3
"""Independent cross-check of the optimal acceptance rate alpha* with a real LP solver.

Writes Tests/SpeculaTheoryTests/Fixtures/lp-optimal-acceptance.json: random small (p, q, n, law) instances with
alpha* solved by scipy's HiGHS linear-programming solver over the plain coupling LP (one variable per draft *tuple*
and token, not the compact set form the Swift code uses), with the draft laws re-implemented here in Python. The
Swift tests compare their max-flow and closed forms against these values at the LP's tolerance (1e-6).

Usage: python3 scripts/make-lp-fixtures.py   (needs numpy and scipy; fixed seed, so the output is reproducible)
"""
import itertools
import json
import pathlib

import numpy as np
from scipy.optimize import linprog

SEED = 20261122
OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/SpeculaTheoryTests/Fixtures/lp-optimal-acceptance.json"


def tuples(law, q, n):
    """Every draft tuple of the law with its probability (ALGORITHMS.md section 4.1, written independently)."""
    V = len(q)
    support = [x for x in range(V) if q[x] > 0]
    if law == "independent":
        for t in itertools.product(support, repeat=n):
            yield t, float(np.prod([q[x] for x in t]))
    elif law == "withoutReplacement":
        n = min(n, len(support))
        for t in itertools.permutations(support, n):
            prob, used = 1.0, set()
            for x in t:
                prob *= q[x] / sum(q[y] for y in support if y not in used)
                used.add(x)
            yield t, prob
    elif law == "greedy":
        order = sorted(range(V), key=lambda x: (-q[x], x))
        fixed = order[: n - 1]
        rest = [x for x in range(V) if x not in fixed]
        mass = sum(q[x] for x in rest)
        for x in rest:
            if q[x] > 0:
                yield tuple(fixed) + (x,), q[x] / mass
    else:
        raise ValueError(law)


def lp_alpha(law, p, q, n):
    """max sum_{t, y in t} f(t, y)  s.t.  sum_y f(t, y) <= Q(t),  sum_t f(t, y) <= p(y),  f >= 0."""
    tlist = list(tuples(law, q, n))
    variables = [(i, y) for i, (t, _) in enumerate(tlist) for y in sorted(set(t))]
    c = -np.ones(len(variables))
    rows, bounds = [], []
    for i, (_, prob) in enumerate(tlist):
        rows.append([1.0 if v[0] == i else 0.0 for v in variables])
        bounds.append(prob)
    for y in range(len(p)):
        rows.append([1.0 if v[1] == y else 0.0 for v in variables])
        bounds.append(p[y])
    result = linprog(c, A_ub=np.array(rows), b_ub=np.array(bounds), bounds=(0, None), method="highs")
    assert result.status == 0, result.message
    return -result.fun


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for index in range(60):
        V = int(rng.integers(2, 6))
        n = int(rng.integers(1, 4)) if index % 3 else 2
        law = ["independent", "withoutReplacement", "greedy"][index % 3]
        if law == "greedy":
            n = max(2, min(n, V))
        p = rng.dirichlet(np.ones(V) * 0.7)
        q = rng.dirichlet(np.ones(V) * 0.7)
        if index % 5 == 0:
            q[int(rng.integers(0, V))] = 0.0
            q = q / q.sum()
        cases.append({"law": law, "drafts": n, "target": p.tolist(), "draft": q.tolist(),
                      "optimal": lp_alpha(law, p.tolist(), q.tolist(), n)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"solver": "scipy.optimize.linprog (HiGHS)", "seed": SEED, "cases": cases}, indent=1))
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
