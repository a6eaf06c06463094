"""Generated vectorised code against hand-written numpy and torch on CPU.

Two networks, each on a batch, loss and gradients summed over the batch:

* the tanh MLP with softmax and cross-entropy, W1 64 x 64, W2 10 x 64, on a
  batch of 10,000 samples (x of shape (10000, 64), one-hot y);
* a small CNN: a 1 x 28 x 28 input, conv2d with eight 3 x 3 kernels and a bias
  per channel, relu, 2 x 2 max-pooling, flatten, a linear layer to 10 classes,
  softmax cross-entropy, on a batch of 512.

Each is timed three ways in the same process: the module ``derive codegen``
writes (``batch_loss_and_gradients``), the same computation written by hand
with numpy (matrix products; sliding windows and tensordot, im2col, for the
convolution; pooling by reshape),
and torch (autograd) when this environment has it; derive never depends on
torch.  Everything computes in float64, torch included (derive's numbers are
float64; torch's default float32 would be comparing unlike with like).  The
three must agree (exit code 1 if not).  Goal of the issue: the generated code
within 2x of hand-written numpy and of torch.

Thread counts are set per measurement (numpy's BLAS through
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS, torch through
``torch.set_num_threads``): each count given with ``--threads`` (default
``1,2``) runs in a child process of its own, and its table's ratios are
measured in that one process.  On a machine whose cores are busy with other
work, more threads than idle cores makes every contender slower and noisier;
the 1-thread table is the like-for-like one there.

Run (torch only in the benchmark's own environment, with derive on the path):

    PYTHONPATH=. /work/benchenv/bin/python bench/bench_codegen_matrix.py
    .venv/bin/python bench/bench_codegen_matrix.py          # without torch

Also printed: the generated modules' length in lines at two sizes (it does
not depend on them).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derive.codegen.scalar import generate  # noqa: E402
from derive.codegen.matrix import load  # noqa: E402
from derive.problems.matrix_solution import MatrixSpecProblem  # noqa: E402

B, N, K = 10_000, 64, 10
CNN_B, CNN_HW, CNN_C, CNN_K = 512, 28, 8, 3
REPEAT = 7
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def spec(n: int) -> dict:
    return {"name": f"tanh MLP n={n}",
            "parameters": {"W1": {"shape": [n, n], "value": 0.01}, "b1": {"shape": [n], "value": 0},
                           "W2": {"shape": [K, n], "value": 0.01}, "b2": {"shape": [K], "value": 0}},
            "inputs": {"x": {"shape": [n], "value": 0.5}},
            "targets": {"y": {"shape": [K], "value": [1] + [0] * (K - 1)}},
            "forward": {"z1": "W1 @ x + b1", "h": "tanh(z1)", "z2": "W2 @ h + b2", "p": "softmax(z2)"},
            "loss": "-sum(y * log(p))"}


def cnn_spec(hw: int = CNN_HW) -> dict:
    m = (hw - CNN_K + 1) // 2
    return {"name": f"CNN {hw}x{hw}",
            "inputs": {"X": {"shape": [1, hw, hw], "value": 0.1}},
            "targets": {"y": {"shape": [K], "value": [1] + [0] * (K - 1)}},
            "parameters": {"Kc": {"shape": [CNN_C, 1, CNN_K, CNN_K], "value": 0.1},
                           "bc": {"shape": [CNN_C, 1, 1], "value": 0},
                           "W": {"shape": [K, CNN_C * m * m], "value": 0.01}, "c": {"shape": [K], "value": 0}},
            "forward": {"Z": "conv2d(X, Kc) + bc", "A": "relu(Z)", "P": "maxpool2d(A, 2)", "f": "flatten(P)",
                        "o": "W @ f + c", "p": "softmax(o)"},
            "loss": "-sum(y * log(p))"}


def mlp_by_hand(W1, b1, W2, b2, x, y):
    z1 = x @ W1.T + b1
    h = np.tanh(z1)
    z2 = h @ W2.T + b2
    m = z2.max(axis=1, keepdims=True)
    e = np.exp(z2 - m)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    loss = -np.sum(y * (z2 - m - np.log(s)))
    dz2 = p - y
    dz1 = (dz2 @ W2) * (1 - h * h)
    return loss, {"W1": dz1.T @ x, "b1": dz1.sum(axis=0), "W2": dz2.T @ h, "b2": dz2.sum(axis=0)}


def cnn_by_hand(Kc, bc, W, c, X, y):
    """What an engineer writes: im2col by sliding windows and one matrix
    product (tensordot), pooling by reshape."""
    Bn = X.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(X, (CNN_K, CNN_K), axis=(2, 3))   # B,1,h,w,k,k
    Z = np.tensordot(win, Kc, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + bc
    A = np.maximum(Z, 0.0)
    h = A.shape[2] // 2
    Aw = A[:, :, :2 * h, :2 * h].reshape(Bn, CNN_C, h, 2, h, 2)
    P = Aw.max(axis=(3, 5))
    f = P.reshape(Bn, -1)
    o = f @ W.T + c
    m = o.max(axis=1, keepdims=True)
    e = np.exp(o - m)
    s = e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * (o - m - np.log(s)))
    do = e / s - y
    dP = (do @ W).reshape(P.shape)
    # the gradient goes to the first maximum of each window (row-major), as torch
    flat = Aw.transpose(0, 1, 2, 4, 3, 5).reshape(Bn, CNN_C, h, h, 4)
    first = flat.argmax(axis=-1)
    mask = np.zeros_like(flat)
    np.put_along_axis(mask, first[..., None], 1.0, axis=-1)
    dA = np.zeros_like(A)
    dA[:, :, :2 * h, :2 * h] = (mask * dP[..., None]).reshape(Bn, CNN_C, h, h, 2, 2) \
        .transpose(0, 1, 2, 4, 3, 5).reshape(Bn, CNN_C, 2 * h, 2 * h)
    dZ = dA * (Z > 0)
    return loss, {"Kc": np.tensordot(dZ, win, axes=([0, 2, 3], [0, 2, 3])),
                  "bc": dZ.sum(axis=(0, 2, 3))[:, None, None], "W": do.T @ f, "c": do.sum(axis=0)}


def mlp_torch(torch, vals):
    tv = {k: torch.tensor(v, requires_grad=k in ("W1", "b1", "W2", "b2")) for k, v in vals.items()}

    def run():
        for k in ("W1", "b1", "W2", "b2"):
            tv[k].grad = None
        z = torch.tanh(tv["x"] @ tv["W1"].T + tv["b1"]) @ tv["W2"].T + tv["b2"]
        out = -(tv["y"] * torch.log_softmax(z, dim=1)).sum()
        out.backward()
        return out, {k: tv[k].grad for k in ("W1", "b1", "W2", "b2")}
    return run


def cnn_torch(torch, vals):
    F = torch.nn.functional
    tv = {k: torch.tensor(v, requires_grad=k in ("Kc", "bc", "W", "c")) for k, v in vals.items()}

    def run():
        for k in ("Kc", "bc", "W", "c"):
            tv[k].grad = None
        Z = F.conv2d(tv["X"], tv["Kc"]) + tv["bc"]
        P = F.max_pool2d(torch.relu(Z), 2)
        o = P.flatten(1) @ tv["W"].T + tv["c"]
        out = -(tv["y"] * torch.log_softmax(o, dim=1)).sum()
        out.backward()
        return out, {k: tv[k].grad for k in ("Kc", "bc", "W", "c")}
    return run


def agree(loss, grads, ref_loss, ref) -> bool:
    return bool(np.isclose(float(loss), float(ref_loss), rtol=1e-10)) and all(
        np.allclose(np.asarray(grads[k]), ref[k], rtol=1e-9, atol=1e-9) for k in ref)


def race(contenders: dict, repeat: int = REPEAT) -> dict:
    """Best time of each, the contenders taking turns (a busy machine slows all alike)."""
    best = {k: float("inf") for k in contenders}
    for _ in range(repeat):
        for k, f in contenders.items():
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def table(title: str, module, vals: dict, by_hand, torch_run) -> bool:
    loss, grads = module.batch_loss_and_gradients(**vals)
    ref_loss, ref = by_hand(**vals)
    ok = agree(loss, grads, ref_loss, ref)
    contenders = {"gen": lambda: module.batch_loss_and_gradients(**vals), "numpy": lambda: by_hand(**vals)}
    if torch_run is not None:
        t_loss, t_grads = torch_run()
        ok = ok and agree(t_loss.detach().numpy(), {k: g.numpy() for k, g in t_grads.items()}, ref_loss, ref)
        contenders["torch"] = torch_run
    t = race(contenders)
    print(title)
    print(f"  generated module     {t['gen'] * 1e3:8.2f} ms")
    print(f"  hand-written numpy   {t['numpy'] * 1e3:8.2f} ms    generated / numpy {t['gen'] / t['numpy']:.2f}")
    if "torch" in t:
        print(f"  torch (CPU, float64) {t['torch'] * 1e3:8.2f} ms    generated / torch {t['gen'] / t['torch']:.2f}")
    return ok


def measure(threads: int) -> int:
    try:
        import torch
    except ImportError:
        torch = None
    else:
        torch.set_num_threads(threads)
    where = f"torch {torch.__version__}" if torch is not None else "torch not importable here"
    print(f"--- {threads} thread{'s' if threads > 1 else ''}, float64 everywhere, best of {REPEAT} "
          f"(numpy {np.__version__}, {where})")
    rng = np.random.default_rng(0)
    mlp = load(generate(MatrixSpecProblem(spec(N), "bench")))
    vals = {"W1": rng.standard_normal((N, N)) / 8, "b1": rng.standard_normal(N) / 8,
            "W2": rng.standard_normal((K, N)) / 8, "b2": rng.standard_normal(K) / 8,
            "x": rng.standard_normal((B, N)), "y": np.eye(K)[rng.integers(0, K, B)]}
    ok = table(f"tanh MLP, softmax-CE, n = {N}, batch = {B}", mlp, vals, mlp_by_hand,
               mlp_torch(torch, vals) if torch is not None else None)
    cnn = load(generate(MatrixSpecProblem(cnn_spec(), "bench")))
    m = (CNN_HW - CNN_K + 1) // 2
    vals = {"Kc": rng.standard_normal((CNN_C, 1, CNN_K, CNN_K)) / 3, "bc": rng.standard_normal((CNN_C, 1, 1)) / 8,
            "W": rng.standard_normal((K, CNN_C * m * m)) / 30, "c": rng.standard_normal(K) / 8,
            "X": rng.standard_normal((CNN_B, 1, CNN_HW, CNN_HW)), "y": np.eye(K)[rng.integers(0, K, CNN_B)]}
    ok = table(f"CNN 1x{CNN_HW}x{CNN_HW}, conv2d {CNN_C}x{CNN_K}x{CNN_K} + bias, relu, maxpool 2, linear {K}, "
               f"softmax-CE, batch = {CNN_B}", cnn, vals, cnn_by_hand,
               cnn_torch(torch, vals) if torch is not None else None) and ok
    if not ok:
        print("the generated module, the hand-written code and torch disagree")
        return 1
    return 0


def lengths() -> None:
    mlp = [len(generate(MatrixSpecProblem(spec(n), "bench")).splitlines()) for n in (N, 1024)]
    cnn = [len(generate(MatrixSpecProblem(cnn_spec(hw), "bench")).splitlines()) for hw in (CNN_HW, 64)]
    print(f"module length: MLP {mlp[0]} lines at n = {N}, {mlp[1]} at n = 1024; "
          f"CNN {cnn[0]} lines at {CNN_HW} x {CNN_HW}, {cnn[1]} at 64 x 64 "
          "(a difference: the givens written out as defaults)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, one child process each (default 1,2)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return measure(args.child)
    rc = 0
    for t in (int(x) for x in args.threads.split(",")):
        env = dict(os.environ, **{v: str(t) for v in THREAD_VARS})
        sys.stdout.flush()
        rc |= subprocess.run([sys.executable, __file__, "--child", str(t)], env=env).returncode
    lengths()
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
