"""Boxes at the same L2 distance from a ground-truth box with different IoU.

A box is (cx, cy, w, h): centre, width, height.  Every value is exact.

>>> R = sympy.Rational
>>> iou((10, 10, 10, 10), (15, 10, 10, 10)), l2((10, 10, 10, 10), (13, 14, 10, 10))
(1/3, 5)
"""
from __future__ import annotations

from math import lcm

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.problems.base import BlocksSolution, Problem
from derive.engine.spec import SpecError
from derive.problems._given import Given
from derive.problems._show import approx_math, num_math


def corners(box) -> tuple:
    """(x1, y1, x2, y2) of a (cx, cy, w, h) box."""
    cx, cy, w, h = (sympy.Rational(v) for v in box)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def overlap(a, b):
    """Area of the intersection of two boxes."""
    ax1, ay1, ax2, ay2 = corners(a)
    bx1, by1, bx2, by2 = corners(b)
    dx = sympy.Max(0, sympy.Min(ax2, bx2) - sympy.Max(ax1, bx1))
    dy = sympy.Max(0, sympy.Min(ay2, by2) - sympy.Max(ay1, by1))
    return dx * dy


def iou(a, b):
    inter = overlap(a, b)
    return inter / (sympy.Rational(a[2] * a[3]) + sympy.Rational(b[2] * b[3]) - inter)


def l2(a, b):
    """Euclidean distance between the (cx, cy, w, h) vectors."""
    return sympy.sqrt(sum((sympy.Rational(x) - sympy.Rational(y)) ** 2 for x, y in zip(a, b)))


def l2_corners(a, b):
    """The same between (x1, y1, x2, y2) vectors, the other common parameterisation."""
    return sympy.sqrt(sum((x - y) ** 2 for x, y in zip(corners(a), corners(b))))


def _iou_numpy(a, b) -> float:
    """Independent float form on corner arrays."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    lo = np.maximum(a[:2] - a[2:] / 2, b[:2] - b[2:] / 2)
    hi = np.minimum(a[:2] + a[2:] / 2, b[:2] + b[2:] / 2)
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _iou_raster(a, b, max_cells: int = 4_000_000):
    """Independent: count the cells of a grid fine enough that every edge lies
    on a grid line (exact), or None if that grid would be too large."""
    edges = [e for box in (a, b) for e in corners(box)]
    step_den = lcm(*[int(sympy.Rational(e).q) for e in edges])
    lo_x, hi_x = min(edges[0::4] + edges[2::4]), max(edges[0::4] + edges[2::4])
    lo_y, hi_y = min(edges[1::4] + edges[3::4]), max(edges[1::4] + edges[3::4])
    nx, ny = int((hi_x - lo_x) * step_den), int((hi_y - lo_y) * step_den)
    if nx * ny > max_cells:
        return None
    xs = (np.arange(nx) + 0.5) / step_den + float(lo_x)
    ys = (np.arange(ny) + 0.5) / step_den + float(lo_y)
    X, Y = np.meshgrid(xs, ys)

    def inside(box):
        x1, y1, x2, y2 = (float(v) for v in corners(box))
        return (X > x1) & (X < x2) & (Y > y1) & (Y < y2)

    ia, ib = inside(a), inside(b)
    return int(np.sum(ia & ib)), int(np.sum(ia | ib))


def _box_math(box) -> B.Math:
    vals = [sympy.Rational(v) for v in box]
    return B.Math("(" + ", ".join(num_math(v).tex for v in vals) + ")", "(" + ", ".join(num_math(v).text for v in vals) + ")")


def _ratio_math(v) -> B.Math:
    """An IoU for a table row: a fraction written inline (1/3 \\approx 0.333333), so that
    the rows of the table do not collide as stacked fractions would."""
    m = approx_math(v)
    if isinstance(v, sympy.Rational) and v.q != 1 and "frac" in m.tex:
        sign = "-" if v < 0 else ""
        return B.Math(m.tex.replace(rf"{sign}\frac{{{abs(v.p)}}}{{{v.q}}}", f"{sign}{abs(v.p)}/{v.q}", 1), m.text)
    return m


def _figure_box(label, box, style) -> dict:
    """The figure schema's box: x, y is the lower-left corner."""
    x1, y1, _, _ = corners(box)
    return {"label": label, "x": float(x1), "y": float(y1), "w": float(box[2]), "h": float(box[3]), "style": style}


class IoUvsL2(Problem):
    id = "iou-vs-l2"
    title = "Same L2 distance, different IoU"
    source = "seed 000, Q5 (answered in seed 001)"
    order = (0, 5)
    question = (
        "Bounding-box regression is often trained with the L2 distance between the predicted and the "
        "ground-truth box, but detections are judged by their IoU (intersection over union) with the "
        "ground truth. Show that two predicted boxes can have the same L2 distance to the ground truth and "
        "different IoU, and explain why.")

    DEFAULTS = {"box_gt": [10, 10, 10, 10], "box_a": [15, 10, 10, 10], "box_b": [13, 14, 10, 10],
                "box_c": [10, 10, 15, 10], "scale": 10}

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, self.DEFAULTS)
        boxes = {}
        for name in ("box_gt", "box_a", "box_b", "box_c"):
            box = given.numbers(name, length=4, lo=-10**6, hi=10**6)
            if box[2] <= 0 or box[3] <= 0:
                raise SpecError(f"values.{name}", "width and height must be positive")
            boxes[name] = tuple(box)
        scale = given.number("scale", lo=0, hi=1000, strict_lo=True)
        gt = boxes["box_gt"]
        preds = [(k[-1], boxes[k]) for k in ("box_a", "box_b", "box_c")]
        # the same offset as box b, on a ground truth `scale` times larger
        big_gt = (gt[0], gt[1], gt[2] * scale, gt[3] * scale)
        big = (big_gt[0] + boxes["box_b"][0] - gt[0], big_gt[1] + boxes["box_b"][1] - gt[1], big_gt[2], big_gt[3])

        results = {tag: {"iou": iou(gt, b), "l2": l2(gt, b), "l2_corners": l2_corners(gt, b),
                         "overlap": overlap(gt, b)} for tag, b in preds}
        results["big"] = {"iou": iou(big_gt, big), "l2": l2(big_gt, big), "l2_corners": l2_corners(big_gt, big),
                          "overlap": overlap(big_gt, big)}
        checks = self._checks(gt, preds, big_gt, big, results)
        values_out = {name: [float(v) for v in box] for name, box in boxes.items()}
        values_out["box_big_gt"] = [float(v) for v in big_gt]
        values_out["box_big"] = [float(v) for v in big]
        exact = {}
        for tag, r in results.items():
            for key in ("iou", "l2", "l2_corners"):
                values_out[f"{key}_{tag}"] = float(r[key])
                exact[f"{key}_{tag}"] = sympy.sstr(r[key])
        blocks = self._blocks(gt, preds, big_gt, big, scale, results, checks)
        return BlocksSolution(self, values_out, blocks, checks, {"exact": exact})

    def _checks(self, gt, preds, big_gt, big, results) -> list:
        pairs = [(tag, gt, b) for tag, b in preds] + [("big", big_gt, big)]
        err = max(abs(_iou_numpy([float(v) for v in a], [float(v) for v in b]) - float(results[t]["iou"]))
                  for t, a, b in pairs)
        checks = [{"method": "numpy-corners", "quantity": "IoU of every pair", "max_abs_err": float(err),
                   "passed": bool(err < 1e-12)}]
        worst, counted = 0.0, 0
        for t, a, b in pairs:
            cells = _iou_raster(a, b)
            if cells is None:
                continue
            counted += 1
            worst = max(worst, abs(cells[0] / cells[1] - float(results[t]["iou"])))
        checks.append({"method": "grid-cell-count", "quantity": "IoU", "max_abs_err": float(worst),
                       "passed": bool(worst < 1e-12),
                       "note": f"{counted} of {len(pairs)} pairs on an exact grid"})
        return checks

    def _blocks(self, gt, preds, big_gt, big, scale, results, checks) -> list:
        out = [B.Heading("Boxes")]
        out.append(B.tex_prose(
            "Boxes are written $(c_x, c_y, w, h)$: centre, width, height. The $L_2$ distance is taken between "
            "these four-number vectors; IoU is the area of the intersection over the area of the union:"))
        out.append(B.Equations((
            B.EqRow(B.Math(r"\mathrm{IoU}(A, G)", "IoU(A, G)"),
                    (B.Math(r"\frac{|A \cap G|}{|A| + |G| - |A \cap G|}", "|A n G| / (|A| + |G| - |A n G|)"),)),
            B.EqRow(B.Math(r"L_2(A, G)", "L2(A, G)"),
                    (B.Math(r"\sqrt{(c_x - c_x^G)^2 + (c_y - c_y^G)^2 + (w - w^G)^2 + (h - h^G)^2}",
                            "sqrt((cx - cx_G)^2 + (cy - cy_G)^2 + (w - w_G)^2 + (h - h_G)^2)"),)),
        )))
        area_gt = sympy.Rational(gt[2] * gt[3])
        rows = [("ground truth G", _box_math(gt), "", "", "", "")]
        for tag, b in preds:
            r = results[tag]
            area = sympy.Rational(b[2] * b[3])
            rows.append((f"prediction {tag.upper()}", _box_math(b), approx_math(r["l2"]), num_math(r["overlap"]),
                         B.Math(rf"{num_math(area).tex} + {num_math(area_gt).tex} - {num_math(r['overlap']).tex}",
                                f"{num_math(area).text} + {num_math(area_gt).text} - {num_math(r['overlap']).text}"),
                         _ratio_math(r["iou"])))
        out.append(B.Table(("box", B.Math("(c_x, c_y, w, h)", "(cx, cy, w, h)"), B.Tex("$L_2$ to $G$"),
                            "intersection", "union", "IoU"), tuple(rows),
                           align="llrrll"))
        l2s = {tag: results[tag]["l2"] for tag, _ in preds}
        ious = {tag: results[tag]["iou"] for tag, _ in preds}
        same = len(set(l2s.values())) == 1
        different = len(set(ious.values())) > 1
        verdict = ("All three predictions are at the same $L_2$ distance $" + num_math(l2s["a"]).tex
                   + "$ from $G$, yet their IoUs differ." if same and different else
                   "With these boxes the $L_2$ distances are "
                   + ", ".join(f"{t.upper()}: ${num_math(v).tex}$" for t, v in l2s.items())
                   + " and the IoUs " + ", ".join(f"{t.upper()}: ${approx_math(v).tex}$" for t, v in ious.items()) + ".")
        out.append(B.tex_prose(verdict))
        cor = {tag: results[tag]["l2_corners"] for tag, _ in preds}
        parts = ["Measured between corner vectors ", B.Math("(x_1, y_1, x_2, y_2)", "(x1, y1, x2, y2)"),
                 " instead, the distances are "]
        for k, (t, v) in enumerate(cor.items()):
            parts += [("" if k == 0 else ", ") + f"{t.upper()}: ", approx_math(v)]
        parts.append(": A and B are still equally far from G with different IoU." if cor["a"] == cor["b"]
                     and ious["a"] != ious["b"] else ".")
        out.append(B.prose(*parts))
        out.append(B.Figure("boxes", {"boxes": [_figure_box("G", gt, "truth")]
                                      + [_figure_box(tag.upper(), b, "pred") for tag, b in preds]},
                            caption="The ground truth G (solid) and the predictions A (dashed), B (dotted) "
                                    "and C (dash-dotted), each in its own colour.",
                            label="fig:iou-vs-l2"))
        rb = results["big"]
        out.append(B.Heading("Why"))
        out.append(B.tex_prose(
            "$L_2$ adds up coordinate errors as if they were independent and equally costly, while IoU depends "
            "on how the errors combine into overlap: a shift along one axis removes a whole strip, a diagonal "
            "shift of the same length removes an L-shaped region of a different area, and a change of size "
            "costs differently from a shift."))
        # the numbers as Math parts: the terminal shows each one's own plain reading
        out.append(B.prose(
            B.Math("L_2", "L2"), " is also blind to the size of the object: the shift of ", B.Math("B", "B"),
            f" on a ground truth {num_math(scale).text} times larger, ",
            B.Math(f"G' = {_box_math(big_gt).tex}", f"G' = {_box_math(big_gt).text}"), " and prediction ",
            _box_math(big), ", has the same ", B.Math("L_2", "L2"), " distance ", num_math(rb["l2"]), " but IoU ",
            approx_math(rb["iou"]), ". IoU is invariant to scale; ", B.Math("L_2", "L2"), " is not. This is why "
            "detectors regress normalised offsets (log-scale widths) or train directly on IoU-based losses "
            "(GIoU, DIoU)."))
        out.append(B.Heading("Verification"))
        out.append(B.prose("Every IoU again in floats from corner arrays, and by counting the cells of a grid on "
                           "which every box edge lies:"))
        out.append(B.Checks(tuple(checks)))
        return out


PROBLEMS = [IoUvsL2()]
