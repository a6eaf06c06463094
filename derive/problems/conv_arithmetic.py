"""Convolution arithmetic: output sizes, fully connected as convolution,
receptive fields, and a CNN's shape/parameter table.

Sizes come from SymPy formulas with the rounding made explicit (``floor``, as
PyTorch does by default; ``ceil`` as its ``ceil_mode=True`` and Caffe do).

>>> conv_size(128, 7, 1, 0), pool_size(55, 2, 2), pool_size(55, 2, 2, ceil_mode=True)
(122, 27, 28)
>>> [l.name for l in cnn_table(["CONV-3-8", "POOL-2", "FC-10"], (8, 8, 3))]
['input', 'conv1', 'pool1', 'fc1']
>>> receptive_field([(3, 1), (3, 1), (3, 2)])[-1]
(7, 2)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import sympy
from numpy.lib.stride_tricks import sliding_window_view

from derive.typeset import blocks as B
from derive.problems.base import BlocksSolution, Problem
from derive.engine.spec import SpecError
from derive.problems._given import Given

# Sizes are whole numbers; P may be 0.  (Integer symbols are real.)
J, K, M, N, s, F = sympy.symbols("J K M N s F", integer=True, positive=True)
P = sympy.Symbol("P", integer=True, nonnegative=True)


def size_formula(length, kernel, stride, padding=0, rounding=sympy.floor):
    """rounding((length + 2 padding - kernel) / stride) + 1, kept in the order it is read."""
    inner = sympy.Add(length, 2 * padding, -kernel, evaluate=False) if padding != 0 else \
        sympy.Add(length, -kernel, evaluate=False)
    return sympy.Add(rounding(inner / stride), 1, evaluate=False)


def tex_(expr) -> str:
    return sympy.latex(expr, order="none")


def text_(expr) -> str:
    return sympy.sstr(expr, order="none")


#: output height/width of a convolution: J x K input, M x N filter, stride s, zero-padding P
CONV_H = size_formula(J, M, s, P)
CONV_W = size_formula(K, N, s, P)
#: max pooling with an F x F window and stride s, no padding
POOL_H = size_formula(J, F, s)
POOL_W = size_formula(K, F, s)
#: the same with the division rounded up (ceil mode)
POOL_H_CEIL = size_formula(J, F, s, P, sympy.ceiling)


def conv_size(length: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """One side of a convolution's output, from :data:`CONV_H`."""
    return int(CONV_H.subs({J: length, M: kernel, s: stride, P: padding}))


def pool_size(length: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    """One side of a pooling output; ``ceil_mode`` as ``torch.nn.MaxPool2d``,
    which also drops a last window that would start inside the right padding."""
    if not ceil_mode:
        return int(CONV_H.subs({J: length, M: kernel, s: stride, P: padding}))
    out = int(POOL_H_CEIL.subs({J: length, F: kernel, s: stride, P: padding}))
    if (out - 1) * stride >= length + padding:
        out -= 1
    return out


# -- the CNN table ---------------------------------------------------------------

_LAYER = re.compile(r"^(CONV)-(\d+)-(\d+)$|^(POOL)-(\d+)$|^(FC|OUTPUT)-(\d+)$")


@dataclass(frozen=True)
class Layer:
    name: str               # conv1, pool1, fc1, output
    spec: str               # CONV-7-32 ...
    kind: str               # input | conv | pool | fc
    shape: tuple            # (H, W, C) or (units,)
    weights: int
    biases: int
    kernel: int = 0
    filters: int = 0
    weight_shape: tuple = ()


def parse_layer(text_: str, where: str) -> tuple:
    """'CONV-7-32' -> ('conv', 7, 32); 'POOL-2' -> ('pool', 2, 0); 'FC-10' -> ('fc', 0, 10)."""
    if not isinstance(text_, str):
        raise SpecError(where, f"expected a layer such as CONV-3-16, POOL-2, FC-10, OUTPUT-4; got {text_!r}")
    m = _LAYER.match(text_.strip().upper())
    if not m:
        raise SpecError(where, f"expected a layer such as CONV-3-16, POOL-2, FC-10, OUTPUT-4; got {text_!r}")
    if m.group(1):
        k, n = int(m.group(2)), int(m.group(3))
        if not (1 <= k <= 4096 and 1 <= n <= 100000):
            raise SpecError(where, "kernel size and filter count must be positive (and at most 4096, 100000)")
        return "conv", k, n
    if m.group(4):
        k = int(m.group(5))
        if not 1 <= k <= 4096:
            raise SpecError(where, "pooling size must be between 1 and 4096")
        return "pool", k, 0
    n = int(m.group(7))
    if not 1 <= n <= 100000:
        raise SpecError(where, "the number of units must be between 1 and 100000")
    return ("output" if m.group(6) == "OUTPUT" else "fc"), 0, n


def cnn_table(layers, input_shape, ceil_mode: bool = False, where: str = "values.layers") -> list:
    """Each layer's activation shape, weights and biases (seed 004's conventions:
    CONV-K-N has padding 0 and stride 1; POOL-K has stride K; FC-N is dense)."""
    h, w, c = input_shape
    rows = [Layer("input", "INPUT", "input", (h, w, c), 0, 0)]
    counts: dict = {}
    flat = None
    for k, spec in enumerate(layers):
        kind, size, n = parse_layer(spec, f"{where}[{k}]")
        counts[kind] = counts.get(kind, 0) + 1
        name = "output" if kind == "output" else f"{kind}{counts[kind]}"
        if kind in ("conv", "pool") and flat is not None:
            raise SpecError(f"{where}[{k}]", f"{spec} after a fully connected layer: there is no map to slide over")
        if kind == "conv":
            if size > h or size > w:
                raise SpecError(f"{where}[{k}]", f"{size}x{size} filter on a {h}x{w} map")
            h2, w2 = conv_size(h, size), conv_size(w, size)
            rows.append(Layer(name, spec, "conv", (h2, w2, n), size * size * c * n, n, size, n, (size, size, c, n)))
            h, w, c = h2, w2, n
        elif kind == "pool":
            if size > h or size > w:
                raise SpecError(f"{where}[{k}]", f"{size}x{size} pooling on a {h}x{w} map")
            h2, w2 = pool_size(h, size, size, 0, ceil_mode), pool_size(w, size, size, 0, ceil_mode)
            rows.append(Layer(name, spec, "pool", (h2, w2, c), 0, 0, size))
            h, w = h2, w2
        else:
            fan_in = flat if flat is not None else h * w * c
            shape_in = (flat,) if flat is not None else (h, w, c)
            rows.append(Layer(name, spec, "fc", (n,), fan_in * n, n, 0, n, shape_in + (n,)))
            flat = n
    return rows


def _table_by_windows(layers, input_shape) -> list:
    """Independent: shapes by enumerating the windows numpy slides over a map,
    parameters as the sizes of torch-layout weight arrays."""
    h, w, c = input_shape
    out, flat = [((h, w, c), 0, 0)], None
    for spec in layers:
        kind, size, n = parse_layer(spec, "layers")
        grid = np.zeros((h, w), dtype=np.int8)
        if kind == "conv":
            h, w = sliding_window_view(grid, (size, size)).shape[:2]
            out.append(((h, w, n), np.zeros((n, c, size, size), dtype=np.int8).size, np.zeros(n).size))
            c = n
        elif kind == "pool":
            h, w = sliding_window_view(grid, (size, size))[::size, ::size].shape[:2]
            out.append(((h, w, c), 0, 0))
        else:
            fan_in = flat if flat is not None else h * w * c
            out.append(((n,), n * fan_in, n))
            flat = n
    return out


def _ceil_count(length: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Independent ceil-mode count: window starts that lie inside the input
    (or its left padding) and overhang the padded edge by less than a stride."""
    padded = length + 2 * padding
    return sum(1 for t in range(0, padded, stride) if t < length + padding and t + kernel - 1 < padded + stride - 1)


# -- receptive field -------------------------------------------------------------

def receptive_field(layers) -> list:
    """(size, jump) after each layer of (kernel, stride): r += (k - 1) * jump; jump *= stride."""
    r, jump, out = 1, 1, []
    for k, st in layers:
        r += (k - 1) * jump
        jump *= st
        out.append((r, jump))
    return out


def _receptive_field_by_indices(layers) -> int:
    """Independent: follow one top unit's inputs down, layer by layer, as index sets."""
    cols = {0}
    for k, st in reversed(list(layers)):
        cols = {i * st + d for i in cols for d in range(k)}
    return max(cols) - min(cols) + 1


# -- fully connected as convolution -------------------------------------------------

def _conv2d_loops(x, filters, bias):
    """Valid, stride-1 cross-correlation by explicit loops: x (C,H,W), filters (n,C,kh,kw)."""
    n, _, kh, kw = filters.shape
    _, hh, ww = x.shape
    out = np.zeros((n, hh - kh + 1, ww - kw + 1))
    for f in range(n):
        for i in range(hh - kh + 1):
            for j in range(ww - kw + 1):
                out[f, i, j] = np.sum(x[:, i:i + kh, j:j + kw] * filters[f]) + bias[f]
    return out


def fc_as_conv_check(seed: int = 0, shape=(3, 5, 5), units: int = 4) -> dict:
    """A dense layer W x + b over a C x H x W map equals a convolution with
    ``units`` filters of size C x H x W (1 x 1 output), and a dense layer after
    it equals a 1 x 1 convolution."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    W1, b1 = rng.standard_normal((units, x.size)), rng.standard_normal(units)
    W2, b2 = rng.standard_normal((2, units)), rng.standard_normal(2)
    dense1 = W1 @ x.reshape(-1) + b1
    dense2 = W2 @ dense1 + b2
    conv1 = _conv2d_loops(x, W1.reshape((units,) + shape), b1)
    conv2 = _conv2d_loops(conv1, W2.reshape(2, units, 1, 1), b2)
    err = max(float(np.max(np.abs(conv1.reshape(-1) - dense1))), float(np.max(np.abs(conv2.reshape(-1) - dense2))))
    return {"method": "numpy-fc-vs-conv", "quantity": "fully connected as convolution",
            "note": f"a random input of shape ({shape[0]}, {shape[1]}, {shape[2]}), FC-{units} then FC-2, seed {seed}",
            "max_abs_err": err, "passed": bool(err < 1e-10)}


#: seed 004 Q5(a)'s input is an RGB image
RGB = 3

# -- the problem --------------------------------------------------------------------

def _numbers_tex(length, kernel, stride) -> str:
    return rf"\left\lfloor \frac{{{length} - {kernel}}}{{{stride}}} \right\rfloor + 1"


def _numbers_text(length, kernel, stride) -> str:
    return f"floor(({length} - {kernel})/{stride}) + 1"


def _shape_text(shape) -> str:
    return " x ".join(str(d) for d in shape)


def _shape_tex(shape) -> str:
    return r" \times ".join(str(d) for d in shape)


def _sm(shape) -> B.Math:
    return B.Math(_shape_tex(shape), _shape_text(shape))


def _im(v: int) -> B.Math:
    return B.Math(str(v), str(v))


class ConvArithmetic(Problem):
    id = "conv-arithmetic"
    title = "Convolution arithmetic, receptive field and a CNN's shape/parameter table"
    source = "seed 002, Q2.1-2.3; seed 004, Q5(a), Q7(a)"
    order = (2, 2, 1)
    question = B.Tex(
        "(1) A $J \\times K$ layer goes through an $M \\times N$ filter with stride $s$ and zero-padding $P$: "
        "how large is the output? (2) And through max pooling with an $F \\times F$ window and stride $s$? "
        "(3) Can a fully connected layer be written as a convolution, and how? (4) Two $3 \\times 3$ "
        "convolutions (stride 1) on an RGB image are followed by $3 \\times 3$ pooling with stride 2: how "
        "large is the receptive field of one pooling unit? (5) For a CNN given as a list of layers "
        "(CONV-$K$-$N$: $N$ filters of $K \\times K$, padding 0, stride 1; POOL-$K$: $K \\times K$ with "
        "stride $K$; FC-$N$: $N$ units), give each layer's activation shape and its numbers of weights and "
        "biases.")

    LAYERS = ["CONV-7-32", "POOL-2", "CONV-5-64", "CONV-3-128", "POOL-2", "FC-10", "OUTPUT-4"]
    INPUT = [128, 128, 3]
    RF_LAYERS = [[3, 1], [3, 1], [3, 2]]

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, {"layers": self.LAYERS, "input": self.INPUT, "rf_layers": self.RF_LAYERS})
        layers = given.get("layers")
        if not isinstance(layers, (list, tuple)) or not layers or len(layers) > 200:
            raise SpecError("values.layers", "expected a list of 1 to 200 layers such as CONV-3-16, POOL-2, FC-10")
        inp = tuple(given.numbers("input", length=3, lo=1, hi=100000, integer=True))
        rf_layers = _rf_layers(given)

        table = cnn_table(layers, inp)
        ceil_table = cnn_table(layers, inp, ceil_mode=True)
        rf = receptive_field(rf_layers)

        checks = self._checks(layers, inp, table, ceil_table, rf_layers, rf)
        values_out = {
            "conv_output_height": text_(CONV_H), "conv_output_width": text_(CONV_W),
            "pool_output_height": text_(POOL_H), "pool_output_width": text_(POOL_W),
            "receptive_field": rf[-1][0],
            "receptive_field_per_layer": [r for r, _ in rf],
        }
        for row in table:
            values_out[f"{row.name}_shape"] = list(row.shape)
            if row.kind != "input":
                values_out[f"{row.name}_weights"] = row.weights
                values_out[f"{row.name}_biases"] = row.biases
        values_out["total_weights"] = sum(r.weights for r in table)
        values_out["total_biases"] = sum(r.biases for r in table)
        values_out["total_parameters"] = values_out["total_weights"] + values_out["total_biases"]
        for a, b in zip(table, ceil_table):
            if a.shape != b.shape:
                values_out[f"ceil_{b.name}_shape"] = list(b.shape)
            if a.weights != b.weights:
                values_out[f"ceil_{b.name}_weights"] = b.weights
        values_out["ceil_total_parameters"] = sum(r.weights + r.biases for r in ceil_table)

        blocks = (self._formulas() + self._fc_blocks(table) + self._rf_blocks(rf_layers, rf, inp, given)
                  + self._table_blocks(table, ceil_table, inp)
                  + [B.Heading("Verification"),
                     B.prose("Every table entry again from numpy's own enumeration of the windows a layer "
                             "slides over and from the sizes of torch-layout weight arrays; the ceil-mode "
                             "table by counting window starts; the receptive field by following one unit's "
                             "inputs down as index sets; fully connected against convolution on random "
                             "numbers:"),
                     B.Checks(tuple(checks))])
        return BlocksSolution(self, values_out, blocks, checks)

    # -- checks ----------------------------------------------------------------------
    def _checks(self, layers, inp, table, ceil_table, rf_layers, rf) -> list:
        independent = _table_by_windows(layers, inp)
        ours = [(r.shape, r.weights, r.biases) for r in table]
        wrong = sum(1 for a, b in zip(ours, independent) if tuple(a[0]) != tuple(b[0]) or a[1:] != tuple(b[1:]))
        checks = [{"method": "numpy-window-enumeration", "quantity": "CNN table (floor)",
                   "max_abs_err": float(wrong), "passed": wrong == 0 and len(ours) == len(independent)}]
        mismatches = 0
        h, w = inp[:2]
        for a, b in zip(table[1:], ceil_table[1:]):
            if b.kind == "pool":
                mismatches += (b.shape[0] != _ceil_count(h, b.kernel, b.kernel)) + (b.shape[1] != _ceil_count(w, b.kernel, b.kernel))
            if b.kind in ("conv", "pool"):
                h, w = b.shape[:2]
        checks.append({"method": "window-start-count", "quantity": "CNN table (ceil mode)",
                       "max_abs_err": float(mismatches), "passed": mismatches == 0})
        by_index = _receptive_field_by_indices(rf_layers)
        checks.append({"method": "index-set-propagation", "quantity": "receptive field",
                       "max_abs_err": float(abs(by_index - rf[-1][0])), "passed": by_index == rf[-1][0]})
        checks.append(fc_as_conv_check())
        return checks

    # -- blocks -----------------------------------------------------------------------
    def _formulas(self) -> list:
        out = [B.Heading("Output size of a convolution")]
        out.append(B.tex_prose(
            "Along the height, the padded input has $J + 2P$ rows; the filter's top edge can sit at rows "
            "$0, s, 2s, \\ldots$ as long as the filter still fits, that is at most $J + 2P - M$. That makes "
            "$(J + 2P - M)/s$ steps rounded down, plus the first position:"))
        out.append(B.Equations((
            B.EqRow(B.Math("H_{\\text{out}}", "H_out"), (B.Math(tex_(CONV_H), text_(CONV_H)),)),
            B.EqRow(B.Math("W_{\\text{out}}", "W_out"), (B.Math(tex_(CONV_W), text_(CONV_W)),)),
        )))
        out.append(B.prose("The depth of the output is the number of filters; each filter spans the whole "
                           "depth of its input."))
        out.append(B.Heading("Output size of max pooling"))
        out.append(B.tex_prose("A pooling window is a filter without weights (and usually without padding), "
                               "so the same count applies with $M = N = F$ and $P = 0$; the depth is unchanged:"))
        out.append(B.Equations((
            B.EqRow(B.Math("H_{\\text{out}}", "H_out"), (B.Math(tex_(POOL_H), text_(POOL_H)),)),
            B.EqRow(B.Math("W_{\\text{out}}", "W_out"), (B.Math(tex_(POOL_W), text_(POOL_W)),)),
        )))
        out.append(B.prose(
            "Rounding: PyTorch (its Conv2d, and MaxPool2d by default) rounds down, dropping the "
            "rows a last window would only partly cover. Ceil mode (MaxPool2d's ceil option, and "
            "Caffe's pooling) rounds up, letting a last window hang over the edge provided it starts "
            "inside the input: ", B.Math(tex_(POOL_H_CEIL), text_(POOL_H_CEIL)),
            B.Tex(". The two differ exactly when $s$ does not divide $J + 2P - F$. The table below floors.")))
        return out

    def _fc_blocks(self, table) -> list:
        out = [B.Heading("Fully connected layers as convolutions")]
        out.append(B.prose(
            B.Tex("Yes. A fully connected layer with $n$ units on a $C \\times H \\times W$ input computes "),
            B.Math(r"y_k = \sum_{c,i,j} W_{k,(c,i,j)}\, x_{c,i,j} + b_k",
                   "y_k = sum over c,i,j of W[k,(c,i,j)] x[c,i,j] + b_k"),
            B.Tex(". Reshape row $k$ of $W$ into a filter of size $C \\times H \\times W$: a convolution with these "
                  "$n$ filters, no padding, stride 1, has exactly one position, and there its output $k$ is the "
                  "same sum, so the output is a $1 \\times 1 \\times n$ map equal to $y$. A fully connected layer "
                  "on a $1 \\times 1 \\times n$ map is then a $1 \\times 1$ convolution. (Applied to a larger "
                  "image, the converted network slides and returns a map of class scores.)")))
        fcs = [(prev, row) for prev, row in zip(table, table[1:]) if row.kind == "fc"]
        rows = []
        for prev, row in fcs:
            if len(prev.shape) == 3:
                h, w, c = prev.shape
                conv = f"CONV-{h}x{w}-{row.filters}" if h != w else f"CONV-{h}-{row.filters}"
                rows.append((row.spec, _sm(prev.shape),
                             B.Tex(f"{row.filters} filters of ${h} \\times {w} \\times {c}$, padding 0 (= {conv})"),
                             _sm((1, 1, row.filters))))
            else:
                rows.append((row.spec, _sm((1, 1) + prev.shape),
                             B.Tex(f"{row.filters} filters of $1 \\times 1 \\times {prev.shape[0]}$"),
                             _sm((1, 1, row.filters))))
        if rows:
            out.append(B.Table(("layer", "input", "as a convolution", "output"), tuple(rows),
                               caption="The fully connected layers of the CNN below, as convolutions", align="llll"))
        return out

    def _rf_blocks(self, rf_layers, rf, inp, given) -> list:
        out = [B.Heading("Receptive field of a pooling unit")]
        out.append(B.prose(
            B.Tex("Walking up the network, each layer with a $k \\times k$ window widens the receptive field by "
                  "$k - 1$ "
            "steps of the current jump (the input pixels between neighbouring units of the layer below), "
            "and a stride multiplies the jump: "),
            B.Math(r"r_l = r_{l-1} + (k_l - 1)\, j_{l-1}, \quad j_l = j_{l-1}\, s_l, \quad r_0 = j_0 = 1",
                   "r_l = r_(l-1) + (k_l - 1) j_(l-1), j_l = j_(l-1) s_l, r_0 = j_0 = 1"), "."))
        default = not given.overridden("rf_layers")
        names = [B.Tex(f"{'pool' if i == len(rf_layers) - 1 else 'conv'} ${k} \\times {k}$, stride {st}")
                 for i, (k, st) in enumerate(rf_layers)] if default else \
            [B.Tex(f"layer {i + 1}: ${k} \\times {k}$, stride {st}") for i, (k, st) in enumerate(rf_layers)]
        rows, prev_r, prev_j = [], 1, 1
        for name, (k, st), (r, j) in zip(names, rf_layers, rf):
            rows.append((name, B.Math(f"{prev_r} + ({k} - 1) \\cdot {prev_j} = {r}", f"{prev_r} + ({k} - 1)*{prev_j} = {r}"),
                         _im(j)))
            prev_r, prev_j = r, j
        out.append(B.Table(("layer", B.Tex("receptive field $r$"), B.Tex("jump $j$")), tuple(rows), align="lll"))
        r = rf[-1][0]
        out.append(B.tex_prose(
            f"One unit of the last layer sees a ${r} \\times {r}$ patch of the input image"
            + (f", through all {RGB} channels of the RGB image (${r} \\times {r} \\times {RGB}$)" if default else "")
            + ". The number of feature maps does not change it; the last layer's own stride does not "
              "either (it only spaces the units apart)."))
        return out

    def _table_blocks(self, table, ceil_table, inp) -> list:
        out = [B.Heading("The CNN's shapes and parameters")]
        out.append(B.tex_prose(
            "Convolutions: $\\text{out} = \\text{in} - K + 1$ on each side (padding 0, stride 1), depth $N$; "
            "weights $K \\times K \\times (\\text{input depth}) \\times N$, one bias per filter. Pooling with "
            "stride $K$: $\\lfloor \\text{in} / K \\rfloor$, no parameters. Fully connected: one weight from every input activation to every unit, one bias "
            "per unit."))
        rows, eqs = [], []
        prev = None
        for row in table:
            if row.kind == "input":
                w_cell, b_cell = _im(0), _im(0)
            elif row.kind == "conv":
                k, c, n = row.weight_shape[0], row.weight_shape[2], row.weight_shape[3]
                w_cell = B.Math(rf"{k} \times {k} \times {c} \times {n} = {row.weights}", f"{k} x {k} x {c} x {n} = {row.weights}")
                b_cell = _im(row.biases)
            elif row.kind == "pool":
                w_cell, b_cell = _im(0), _im(0)
            else:
                fan = row.weight_shape[:-1]
                w_cell = B.Math(rf"{_shape_tex(fan)} \times {row.filters} = {row.weights}",
                                f"{_shape_text(fan)} x {row.filters} = {row.weights}")
                b_cell = _im(row.biases)
            rows.append((row.spec, row.name, _sm(row.shape), w_cell, b_cell))
            if prev is not None and row.kind in ("conv", "pool"):
                stride = 1 if row.kind == "conv" else row.kernel
                shown = size_formula(prev.shape[0], row.kernel, stride)
                eqs.append(B.EqRow(B.Math(rf"H_{{\text{{{row.name}}}}}", f"H_{row.name}"), (
                    B.Math(_numbers_tex(prev.shape[0], row.kernel, stride), _numbers_text(prev.shape[0], row.kernel, stride)),
                    _im(int(shown)))))
            prev = row
        tw = sum(r.weights for r in table)
        tb = sum(r.biases for r in table)
        rows.append(("total", "", "", _im(tw), _im(tb)))
        out.append(B.Table(("layer", "name", "activation shape", "weights", "biases"), tuple(rows), align="lllrr"))
        out.append(B.tex_prose(f"In all {tw + tb} trainable parameters. The heights from the formula, with $J$ "
                               "the height coming in (widths the same way):"))
        out.append(B.Equations(tuple(eqs)))
        diffs = [(a, b) for a, b in zip(table, ceil_table) if a.shape != b.shape or a.weights != b.weights]
        if diffs:
            parts = []
            for a, b in diffs:
                if a.shape != b.shape:
                    parts.append(f"{a.name} ({a.spec}) is ${_shape_tex(b.shape)}$ instead of ${_shape_tex(a.shape)}$")
                elif a.weights != b.weights:
                    parts.append(f"{a.name} ({a.spec}) has {b.weights} weights instead of {a.weights}")
            total = sum(r.weights + r.biases for r in ceil_table)
            out.append(B.tex_prose("Where the rounding matters: in ceil mode " + "; ".join(parts)
                               + f" ({total} parameters in all). The floor table above is what PyTorch builds "
                                 "by default."))
        else:
            out.append(B.prose("Every pooling here divides its input exactly, so ceil mode gives the same table."))
        return out


def _rf_layers(given) -> list:
    raw = given.get("rf_layers")
    where = "values.rf_layers"
    if not isinstance(raw, (list, tuple)) or not raw or len(raw) > 200:
        raise SpecError(where, "expected a list of [kernel, stride] pairs")
    out = []
    for i, pair in enumerate(raw):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise SpecError(f"{where}[{i}]", "expected [kernel, stride]")
        out.append((given.integer("rf_layers", lo=1, hi=4096, raw=pair[0]),
                    given.integer("rf_layers", lo=1, hi=4096, raw=pair[1])))
    return out


PROBLEMS = [ConvArithmetic()]
