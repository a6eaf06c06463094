"""Transposed convolution: its output size and its matrix form.

A stride-s convolution (cross-correlation) of an O x O map with a k x k
kernel giving an n x n map is ``vec(out) = C vec(in)``; the transposed
convolution of an n x n map is multiplication by ``C^T``: each input entry
scatters a copy of the kernel, scaled by itself, into the larger output.

>>> C = conv_matrix(2, 2, 2, 1)             # 3 x 3 -> 2 x 2 convolution
>>> C.shape, C.T.shape
((4, 9), (9, 4))
>>> transposed_conv([[1, 1], [1, 1]], [[1, 1], [1, 1]], 1)
[[1, 2, 1], [2, 4, 2], [1, 2, 1]]
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.problems.base import BlocksSolution, Problem
from derive.engine.spec import SpecError
from derive.problems._given import Given

i_, k_, s_, P_ = sympy.symbols("i k s P", integer=True, positive=True)
#: output side of a transposed convolution: input side i, kernel k, stride s, padding P
OUT_SIZE = sympy.Add(sympy.Mul(sympy.Add(i_, -1, evaluate=False), s_, evaluate=False), -2 * P_, k_,
                    evaluate=False)


def out_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    return int(OUT_SIZE.subs({i_: n, k_: k, s_: stride, P_: padding}))


def symbols_grid(letter: str, rows: int, cols: int) -> sympy.Matrix:
    """x11 x12 ... as real symbols, in a Matrix."""
    return sympy.Matrix(rows, cols, lambda r, c: sympy.Symbol(f"{letter}{r + 1}{c + 1}", real=True))


def conv_matrix(n: int, k: int, kernel_or_size, stride: int = 1) -> sympy.Matrix:
    """C of the convolution that maps an out_size(n, k, stride) square map to an
    n x n map: row (i, j) holds the kernel at the positions the window at (i, j) covers."""
    kernel = symbols_grid("k", k, k) if isinstance(kernel_or_size, int) else sympy.Matrix(kernel_or_size)
    o = out_size(n, k, stride)
    C = sympy.zeros(n * n, o * o)
    for i in range(n):
        for j in range(n):
            for p in range(k):
                for q in range(k):
                    C[i * n + j, (i * stride + p) * o + (j * stride + q)] = kernel[p, q]
    return C


def transposed_conv(x, kernel, stride: int = 1) -> list:
    """Direct scatter: out[i s + p, j s + q] += x[i, j] kernel[p, q] (exact for ints)."""
    n, k = len(x), len(kernel)
    o = out_size(n, k, stride)
    out = [[0] * o for _ in range(o)]
    for i in range(n):
        for j in range(n):
            for p in range(k):
                for q in range(k):
                    out[i * stride + p][j * stride + q] += x[i][j] * kernel[p][q]
    return out


def _fft_transposed(x, kernel, stride: int) -> np.ndarray:
    """Independent: spread the input with stride - 1 zeros, then a full 2-D
    convolution by FFT (no kernel flip: the transposed convolution scatters)."""
    x = np.asarray(x, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    n, k = x.shape[0], kernel.shape[0]
    spread = np.zeros(((n - 1) * stride + 1,) * 2)
    spread[::stride, ::stride] = x
    size = spread.shape[0] + k - 1
    return np.real(np.fft.ifft2(np.fft.fft2(spread, (size, size)) * np.fft.fft2(kernel, (size, size))))


def _correlate(y, kernel, stride: int) -> np.ndarray:
    """Plain stride-s cross-correlation (the forward convolution) by loops."""
    k = kernel.shape[0]
    n = (y.shape[0] - k) // stride + 1
    return np.array([[np.sum(y[i * stride:i * stride + k, j * stride:j * stride + k] * kernel)
                      for j in range(n)] for i in range(n)])


def _names(*mats) -> dict:
    out = {}
    for m in mats:
        for sym in m:
            if isinstance(sym, sympy.Symbol):
                out[sym] = f"{sym.name[0]}_{{{sym.name[1:]}}}"
    return out


def _mtex(m, names) -> str:
    return sympy.latex(m, symbol_names=names)


def _mtext(m) -> str:
    return "[" + ", ".join("[" + ", ".join(str(v) for v in m.row(r)) + "]" for r in range(m.rows)) + "]"


class TransposedConv(Problem):
    id = "transposed-conv"
    title = "Transposed convolution: output size and matrix form"
    source = "seed 000, Q6 (answered in seed 001)"
    order = (0, 6)
    question = B.Tex(
        "(a) A square input filled with ones goes through a transposed convolution with a square kernel "
        "of ones (given stride, no padding). How large is the result, and what is it? "
        "(b) Write the 2-D transposed convolution of a $2 \\times 2$ input with a $2 \\times 2$ kernel as a "
        "matrix multiplication.")

    DEFAULTS = {"input_size": 3, "kernel_size": 7, "stride": 1, "padding": 0,
                "matrix_input_size": 2, "matrix_kernel_size": 2, "matrix_stride": 1}

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, self.DEFAULTS)
        n = given.integer("input_size", lo=1, hi=32)
        k = given.integer("kernel_size", lo=1, hi=32)
        stride = given.integer("stride", lo=1, hi=8)
        pad = given.integer("padding", lo=0, hi=32)
        bn = given.integer("matrix_input_size", lo=1, hi=3)
        bk = given.integer("matrix_kernel_size", lo=1, hi=3)
        bs = given.integer("matrix_stride", lo=1, hi=3)
        size = out_size(n, k, stride, pad)
        if size < 1:
            raise SpecError("values.padding", f"padding {pad} leaves no output ({size} x {size})")

        ones = transposed_conv([[1] * n for _ in range(n)], [[1] * k for _ in range(k)], stride)
        ones = [row[pad:len(row) - pad] for row in ones[pad:len(ones) - pad]]

        X = symbols_grid("x", bn, bn)
        Kk = symbols_grid("k", bk, bk)
        C = conv_matrix(bn, bk, Kk, bs)
        CT = C.T
        vec_x = X.reshape(bn * bn, 1)
        product = CT * vec_x
        bo = out_size(bn, bk, bs)
        result = product.reshape(bo, bo)

        checks = self._checks(n, k, stride, pad, ones, X, Kk, CT, result, bs)
        values_out = {
            "output_size_formula": sympy.sstr(OUT_SIZE, order="none"),
            "output_size": size,
            "output_shape": [size, size],
            "ones_result": ones,
            "matrix_shape": [CT.rows, CT.cols],
            "matrix": [[str(v) for v in CT.row(r)] for r in range(CT.rows)],
            "result_vector": [str(v) for v in product],
            "result": [[str(v) for v in result.row(r)] for r in range(result.rows)],
        }
        blocks = self._blocks(n, k, stride, pad, size, ones, X, Kk, C, CT, vec_x, product, result, bs, checks)
        return BlocksSolution(self, values_out, blocks, checks)

    def _checks(self, n, k, stride, pad, ones, X, Kk, CT, result, bs) -> list:
        fft = _fft_transposed(np.ones((n, n)), np.ones((k, k)), stride)
        if pad:
            fft = fft[pad:-pad, pad:-pad]
        err = float(np.max(np.abs(fft - np.array(ones, dtype=float))))
        checks = [{"method": "numpy-fft-full-convolution", "quantity": "(a) all-ones result",
                   "max_abs_err": err, "passed": bool(err < 1e-9)}]
        rng = np.random.default_rng(0)
        xv = rng.standard_normal(X.shape)
        kv = rng.standard_normal(Kk.shape)
        subs = {X[i]: float(xv.flat[i]) for i in range(len(X))}
        subs.update({Kk[i]: float(kv.flat[i]) for i in range(len(Kk))})
        from_matrix = np.array(result.xreplace(subs).tolist(), dtype=float)
        direct = np.array(transposed_conv(xv.tolist(), kv.tolist(), bs), dtype=float)
        fft_b = _fft_transposed(xv, kv, bs)
        err = max(float(np.max(np.abs(from_matrix - direct))), float(np.max(np.abs(from_matrix - fft_b))))
        checks.append({"method": "numpy-scatter-and-fft", "quantity": "(b) matrix form at random numbers",
                       "max_abs_err": err, "passed": bool(err < 1e-9)})
        # C^T is the adjoint of the convolution: <C y, x> = <y, C^T x> for every y, x
        y = rng.standard_normal(from_matrix.shape)
        lhs = float(np.sum(_correlate(y, kv, bs) * xv))
        rhs = float(np.sum(y * from_matrix))
        err = abs(lhs - rhs)
        checks.append({"method": "adjoint-identity", "quantity": "<conv(y), x> = <y, convT(x)>",
                       "max_abs_err": err, "passed": bool(err < 1e-9)})
        return checks

    def _blocks(self, n, k, stride, pad, size, ones, X, Kk, C, CT, vec_x, product, result, bs, checks):
        out = [B.Heading("(a) Output size")]
        out.append(B.tex_prose(
            "Each input entry pastes a scaled copy of the $k \\times k$ kernel into the output, the copies of "
            "neighbouring entries $s$ apart; the last copy starts at $(i - 1) s$ and ends $k - 1$ further on. "
            "Padding $P$ crops $P$ rows and columns from each border:"))
        subs = {i_: n, k_: k, s_: stride, P_: pad}
        shown = f"({n} - 1) \\cdot {stride} - 2 \\cdot {pad} + {k}"
        out.append(B.Equations((B.EqRow(B.Math(r"o", "o"), (
            B.Math(sympy.latex(OUT_SIZE, order="none"), sympy.sstr(OUT_SIZE, order="none")),
            B.Math(shown, f"({n} - 1)*{stride} - 2*{pad} + {k}"),
            B.Math(str(int(OUT_SIZE.subs(subs))), str(size)))),)))
        out.append(B.tex_prose(f"So the result is ${size} \\times {size}$. With ones everywhere, each output entry counts "
                           "the kernel copies that cover it:"))
        M = sympy.Matrix(ones)
        out.append(B.Equations((B.EqRow(B.Math(r"\text{result}", "result"),
                                        (B.Math(sympy.latex(M), _mtext(M)),)),)))
        out.append(B.tex_prose(f"Its entries add up to ${sum(map(sum, ones))}"
                               + (f" = {n * n} \\times {k * k}$: every input one spreads {k * k} ones."
                                  if not pad else "$.")))

        names = _names(X, Kk)
        out.append(B.Heading("(b) Matrix form"))
        o = out_size(X.rows, Kk.rows, bs)
        out.append(B.tex_prose(
            f"Take the ${X.rows} \\times {X.cols}$ input $X$ and the ${Kk.rows} \\times {Kk.cols}$ kernel $K$ "
            f"below. The ordinary convolution (stride {bs}) that maps an ${o} \\times {o}$ map $Y$ to an "
            f"${X.rows} \\times {X.cols}$ map is "
            "$\\operatorname{vec}(\\operatorname{conv}(Y)) = C \\operatorname{vec}(Y)$, with vectors read row by "
            "row: row $(i, j)$ of $C$ holds the kernel at the positions its window covers. The transposed "
            "convolution multiplies by the transpose of $C$:"))
        out.append(B.Equations((
            B.EqRow(B.Math("X", "X"), (B.Math(_mtex(X, names), _mtext(X)),)),
            B.EqRow(B.Math("K", "K"), (B.Math(_mtex(Kk, names), _mtext(Kk)),)),
            B.EqRow(B.Math(rf"C \; ({C.rows} \times {C.cols})", f"C ({C.rows} x {C.cols})"),
                    (B.Math(_mtex(C, names), _mtext(C)),)),
        )))
        out.append(B.Equations((
            B.EqRow(B.Math(r"C^{\top} \operatorname{vec}(X)", "C^T vec(X)"), (
                B.Math(_mtex(CT, names) + " " + _mtex(vec_x, names), _mtext(CT) + " * " + _mtext(vec_x)),
                B.Math(_mtex(product, names), _mtext(product)))),
        )))
        out.append(B.tex_prose(f"Reading the {product.rows} entries back row by row gives the "
                               f"${o} \\times {o}$ result:"))
        out.append(B.Equations((B.EqRow(B.Math(r"X \circledast^{\top} K", "convT(X, K)"),
                                        (B.Math(_mtex(result, names), _mtext(result)),)),)))
        out.append(B.prose(
            B.Math(r"C^{\top}", "C^T"), B.Tex(f" is ${CT.rows} \\times {CT.cols}$: one row per output entry, "
                                             "one column per input entry; column "
            "$(i, j)$ is the kernel pasted at the output position of input entry $(i, j)$. It is the matrix of the "
            "gradient of the convolution with respect to its input, which is why the operation is also "
            "called the backward convolution.")))
        out.append(B.Heading("Verification"))
        out.append(B.prose("The all-ones result by an FFT full convolution; the matrix form at random numbers "
                           "against a direct scatter loop and the FFT; and the adjoint identity with a "
                           "loop-based forward convolution:"))
        out.append(B.Checks(tuple(checks)))
        return out


PROBLEMS = [TransposedConv()]
