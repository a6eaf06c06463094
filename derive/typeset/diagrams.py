r"""Block diagrams a question asks to draw, as figure blocks (TikZ via a template).

Like :func:`derive.typeset.network.network_figure`, each function returns a
:class:`~derive.typeset.blocks.Figure` of plain data; the LaTeX is in
``templates/partials/figure-<kind>.tex.j2`` and :mod:`derive.document.render` turns
the data into coordinates.

>>> fig = attention_figure(3)
>>> fig.kind, fig.data["Tx"]
('attention', 3)
"""
from __future__ import annotations

from derive.typeset.blocks import Figure


def attention_figure(Tx: int = 3) -> Figure:
    r"""Bahdanau attention in an encoder-decoder translator, in the seed's
    notation (seed 003, 1.c): encoder annotations :math:`h_1 \dots h_{T_x}`,
    scores :math:`e_{ij}`, softmax weights :math:`\alpha_{ij}`, context
    :math:`c_i = \sum_j \alpha_{ij} h_j`, and the decoder step
    :math:`s_{i-1} \to s_i` fed by :math:`y_{i-1}` and :math:`c_i`. At most
    three source positions are drawn, then dots and the last one."""
    return Figure("attention", {"Tx": int(Tx)},
                  caption="Attention in an encoder-decoder translator, at decoder step i (encoder blue, "
                          "decoder red). Every annotation is scored against the previous decoder state, the "
                          "scores are normalised by a softmax over the source positions, and the weighted sum "
                          "of the annotations is the context that feeds the next decoder state. The worked "
                          "problem below drops the index i.",
                  label="fig:attention")
