"""Every matrix step's ``expr`` is spec syntax that reads back (CONTRACT.md,
"Tensor operations and matrix form"): parsed by the spec's own allow-list
parser (:mod:`derive.engine.matspec`) over the problem's names and earlier
adjoints, it evaluates to the step's value.  Checked for every vector spec
under examples/, every vector built-in, and engineer-style specs
(tests/engineer_specs/: a mixture-of-experts gate, gated linear units, a
residual block with layer norm, a broadcast bias, losses averaged over a
batch)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from derive.engine.matspec import build_matrix_spec
from derive.problems import builtins
from derive.problems.matrix_form import MatrixForm
from derive.problems.vector_spec import is_vector_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if is_vector_spec(yaml.safe_load(p.read_text())))
ENGINEER = sorted((ROOT / "tests" / "engineer_specs").glob("*.yaml"))
#: names spec syntax may use besides the problem's: its functions and constants
NOT_NAMES = re.compile(r"[A-Za-z_]\w*")


def read_back(mf: MatrixForm, text: str) -> np.ndarray:
    """The value of spec text over the names of ``mf`` (forward values and
    adjoints so far), read by the spec front end: a spec whose inputs are
    the names it uses, sequences declared [T, ...] as the problem did."""
    values = mf.derivation.values
    names = sorted({n for n in NOT_NAMES.findall(text) if n in values})
    seqs = mf.spec.sequences
    inputs = {}
    for n in names:
        shape = list(np.shape(values[n]))
        if not shape:
            inputs[n] = float(values[n])
            continue
        inputs[n] = {"shape": (["T"] + shape[1:]) if n in seqs else shape,
                     "value": np.asarray(values[n]).tolist()}
    if not names:       # a constant step (dL/dL_3 = 1): read beside a quantity, as a spec must
        inputs["z_"] = 0.0
        text = f"({text}) + z_"
    data = {"inputs": inputs, "forward": {"r_": text}, "loss": "sum(r_)"}
    if any(n in seqs for n in names):
        data["unroll"] = {"T": mf.spec.T, "equations": {}}
    return build_matrix_spec(data).forward()["r_"]


def assert_reads_back(mf: MatrixForm, where: str) -> int:
    """Every step, in order; the count of steps checked."""
    assert mf.steps, where
    for step in mf.steps:
        got = read_back(mf, step.spec)
        np.testing.assert_allclose(np.broadcast_to(got, step.shape), step.value, rtol=1e-10, atol=1e-10,
                                   err_msg=f"{where}: {step.name} = {step.spec}")
    return len(mf.steps)


@pytest.mark.parametrize("path", EXAMPLES + ENGINEER, ids=lambda p: p.name)
def test_every_step_of_a_vector_spec_reads_back(path):
    mf = MatrixForm.from_data(yaml.safe_load(path.read_text()))
    assert all(c["passed"] for c in mf.checks), mf.checks
    assert_reads_back(mf, path.name)


def _vector_builtins():
    out = []
    for p in builtins():
        try:
            mf = p.solve().matrix_form
        except AttributeError:
            continue
        if mf is not None:
            out.append((p.id, mf))
    return out


def test_every_step_of_a_vector_builtin_reads_back():
    found = _vector_builtins()
    ids = [i for i, _ in found]
    assert {"rnn-bptt", "lstm-cell", "bahdanau-attention"} <= set(ids), ids
    for pid, mf in found:
        assert_reads_back(mf, pid)


def test_examples_and_engineer_specs_are_all_there():
    assert {p.name for p in EXAMPLES} >= {"cnn.yaml", "gru-cell.yaml", "rnn-bptt.yaml", "self-attention.yaml"}
    assert len(ENGINEER) >= 8
