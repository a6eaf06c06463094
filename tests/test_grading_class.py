"""A simulated class of 300: seeded mistakes whose diagnoses derive check
must recover student by student.

Each student answers the tanh/sigmoid net (seed 002 Q1.3) to 4 or 3
decimals; up to three of their answers carry a seeded mistake (a flipped
sign, a missing factor, a weight not updated, ..., or an arbitrary wrong
number no diagnosis should name), and the answers after a mistake follow
from the student's own wrong value, as on paper.  Precision is the share of
the diagnoses derive gives that name the seeded mistake (a diagnosis of an
arbitrary number or of a right answer counts against it); recall the share
of nameable seeded mistakes it names.  Run this file to print both:

    .venv/bin/python tests/test_grading_class.py
"""
from __future__ import annotations

import random
import sys

import numpy as np

from derive.grading.answers import Batch
from derive.grading.verdicts import answer_key, check_batch
from derive.problems import load

QUESTIONS = ["z1", "h1", "u", "o", "L", "dL/do", "dL/du", "dL/dw2_11", "dL/dh1", "dL/dz1", "dL/dw1_11",
             "w2_11", "w2_12", "w1_11", "w1_12"]
LR = 0.5


def _mistakes() -> list:
    """(question, wrong value from values v, the code that names it).  An
    update's mistake uses the student's own gradient ``v`` (their values so
    far), as a student would."""
    return [
        ("dL/dw2_11", lambda v: -v["dL/dw2_11"], "sign"),
        ("dL/dw1_11", lambda v: -v["dL/dw1_11"], "sign"),
        ("dL/do", lambda v: 2 * v["dL/do"], "extra-factor:2"),
        ("dL/dw2_11", lambda v: v["dL/du"], "missing-factor:h1"),
        ("dL/dh1", lambda v: v["dL/du"], "missing-factor:w2_11"),
        ("dL/dz1", lambda v: v["dL/dh1"], "missing-derivative:h1"),
        ("w2_11", lambda v: v["w2_11"], "not-updated"),
        ("w1_11", lambda v: v["w1_11"], "not-updated"),
        ("w2_12", lambda v: v["w2_12"] - v["dL/dw2_12"], "missing-lr"),
        ("w1_12", lambda v: v["w1_12"] + LR * v["dL/dw1_12"], "wrong-direction"),
        ("w2_11", lambda v: v["w2_12+"], "swapped-with:w2_12"),
        # mistakes no model names: any diagnosis of these is a false one
        ("dL/dw1_11", lambda v: round(0.37 * v["dL/dw1_11"] + 0.011, 4), None),
        ("w1_12", lambda v: round(v["w1_12"] + 0.0423, 4), None),
        ("o", lambda v: round(v["o"] * 0.83, 4), None),
    ]


def simulate(n: int = 300, seed: int = 14):
    """(solution, batch, seeded): seeded[(student, question)] = code."""
    sol = load("mlp-tanh-sigmoid").solve()
    key = answer_key(sol)
    rng = random.Random(seed)
    mistakes = _mistakes()
    rows, seeded = [], {}
    for s in range(n):
        chosen = {}
        for q, fn, code in rng.sample(mistakes, rng.choice([0, 1, 1, 2, 2, 3])):
            chosen.setdefault(q, (fn, code))
        # in computation order: each mistake applied to the student's own
        # values so far; later answers follow from them, as on paper
        given = np.full((1, len(key.quantities)), np.nan)
        for q in sorted(chosen, key=lambda q: key.index[key.resolve(q)[0]]):
            own, _ = key.own_values(given)
            v = {x.qid: own[0, k] for k, x in enumerate(key.quantities)}
            given[0, key.index[key.resolve(q)[0]]] = chosen[q][0](v)
        own, _ = key.own_values(given)
        digits = rng.choice([4, 4, 3])
        row = {}
        for q in QUESTIONS:
            x = own[0, key.index[key.resolve(q)[0]]]
            row[q] = f"{x:.{digits}f}"
        for q, (_fn, code) in chosen.items():
            seeded[(f"s{s:03d}", q)] = code or "unnamed"
        rows.append(row)
    batch = Batch([f"s{s:03d}" for s in range(n)], list(QUESTIONS), rows)
    return sol, batch, seeded


def measure(n: int = 300, seed: int = 14) -> dict:
    sol, batch, seeded = simulate(n, seed)
    result = check_batch(sol, batch)
    given_codes, hits, wrong_accepted = 0, 0, 0
    for row in result["rows"]:
        for it in row["items"]:
            want = seeded.get((row["id"], it["name"]))
            if it["code"]:
                given_codes += 1
                hits += it["code"] == want
            if want and it["verdict"] in ("correct", "equivalent", "rounding"):
                wrong_accepted += 1
    recalled = sum(1 for row in result["rows"] for it in row["items"]
                   if seeded.get((row["id"], it["name"])) == it["code"] and it["code"])
    named = sum(1 for c in seeded.values() if c != "unnamed")
    return {"students": n, "seeded": len(seeded), "named": named, "diagnoses": given_codes,
            "precision": hits / given_codes if given_codes else 1.0,
            "recall": recalled / named if named else 1.0, "seeded_accepted": wrong_accepted,
            "result": result}


def test_simulated_class_diagnoses_recovered():
    m = measure()
    assert m["seeded"] > 200
    assert m["seeded_accepted"] == 0                 # no seeded mistake is accepted
    assert m["precision"] >= 0.95, m["precision"]
    assert m["recall"] >= 0.9, m["recall"]


def test_simulated_class_summary_counts_codes():
    m = measure(60, seed=3)
    q = m["result"]["questions"]["w2_11"]
    seeded = sum(1 for (sid, name), code in simulate(60, 3)[2].items() if name == "w2_11" and code == "not-updated")
    assert q["codes"].get("not-updated", 0) == seeded


if __name__ == "__main__":
    m = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    print(f"{m['students']} students, {m['seeded']} seeded mistakes ({m['named']} of a kind derive names, "
          f"{m['seeded'] - m['named']} of none), {m['diagnoses']} diagnoses given")
    print(f"precision {m['precision']:.3f} (diagnoses naming the seeded mistake), recall {m['recall']:.3f}; "
          f"seeded mistakes accepted: {m['seeded_accepted']}")
