"""Batch sums of generated vectorised code: a value shared by every sample of
the batch (a target, a bias) counts once per sample, as the sum of the
per-sample gradients does."""
from pathlib import Path

import numpy as np

from derive.codegen.matrix import generate, load
from derive.engine.matspec import build_matrix_spec
from derive.engine.spec import read_file
from derive.problems.matrix_form import MatrixForm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def module(name):
    mf = MatrixForm(build_matrix_spec(read_file(EXAMPLES / name)))
    return load(generate(mf, name)), mf


def test_shared_target_counts_once_per_sample():
    m, mf = module("mlp-softmax-ce.yaml")
    x = np.random.default_rng(1).standard_normal((7,) + tuple(mf.graph.nodes["x"].shape))
    loss, per = m.loss_and_gradients(x=x)                 # y (one-hot) shared by the 7 samples
    total_loss, total = m.batch_loss_and_gradients(x=x)
    assert np.isclose(total_loss, loss.sum())
    for name, g in per.items():
        np.testing.assert_allclose(total[name], g.sum(axis=0), rtol=1e-12, atol=1e-14)


def test_nothing_batched_but_one_parameter():
    m, mf = module("mlp-softmax-ce.yaml")
    W1 = np.asarray(mf.leaves["W1"], dtype=float)
    W1s = W1 + 0.01 * np.random.default_rng(2).standard_normal((4,) + W1.shape)
    _, per = m.loss_and_gradients(W1=W1s)
    _, total = m.batch_loss_and_gradients(W1=W1s)
    for name, g in per.items():
        expected = g.sum(axis=0) if np.ndim(g) > np.ndim(total[name]) else 4 * g
        np.testing.assert_allclose(total[name], expected, rtol=1e-12, atol=1e-14)
