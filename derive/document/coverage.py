"""Every question of the five seed documents, and where the key answers it.

This is data, read by the answer key's first page: each question of each seed
with a short title, and either the built-in that answers it or the reason it
has no computed answer (an essay, a conceptual multiple-choice question, a
programming task). Seed 001 is the published solution of seed 000, so its
rows are the answers it gives, checked by the same built-ins (and in the
key's errata).

>>> [q.id for q in QUESTIONS if q.seed == "004" and q.label == "Q2"]
['mlp-relu-regression']
>>> sorted({q.reason for q in QUESTIONS if q.id is None})
['conceptual multiple choice', 'essay', 'programming']
"""
from __future__ import annotations

from dataclasses import dataclass

#: why a question has no computed answer
ESSAY = "essay"
CHOICE = "conceptual multiple choice"
PROGRAMMING = "programming"

#: seed number -> what the document is
SEEDS = {
    "000": "IIT Hyderabad CS5370, Assignment 4 (2021): RNNs, detection, transposed convolution",
    "001": "A student's published solution of seed 000",
    "002": "IIIT Hyderabad RRC Summer School 2021, Assignment 2: backpropagation and CNNs",
    "003": "Mid-semester exam solution: LSTM, attention, detection, segmentation",
    "004": "IIT Kharagpur CS60010 mid-semester exam 2022-23, with its published solution",
}


@dataclass(frozen=True)
class Question:
    seed: str
    label: str
    title: str                 # derive's words, $...$ maths typeset
    id: str | None = None      # the built-in that answers it
    reason: str = ""           # why it is not covered, when id is None


def _q(seed, label, title, answer):
    if answer in (ESSAY, CHOICE, PROGRAMMING):
        return Question(seed, label, title, None, answer)
    return Question(seed, label, title, answer)


QUESTIONS = [
    _q("000", "Q1(a)-(c)", "RNN: $\\partial E/\\partial W$, $\\partial E/\\partial U$, $\\partial E/\\partial V$ and those of $E_2$, $E_3$", "rnn-bptt"),
    _q("000", "Q2(a)", "Vanishing gradients (computed: gradient norms)", "rnn-bptt"),
    _q("000", "Q2(b)", "Repeated-word data and vanishing gradients", ESSAY),
    _q("000", "Q3", "11-point interpolated AP of a ranked detection list", "interpolated-ap"),
    _q("000", "Q4", "Focal loss at $\\gamma = 0$ and for easy/hard points", "focal-loss"),
    _q("000", "Q5", "Same $L_2$ distance, different IoU", "iou-vs-l2"),
    _q("000", "Q6(a)", "Size of a transposed convolution ($3 \\times 3$ input, $7 \\times 7$ filter)", "transposed-conv"),
    _q("000", "Q6(b)", "Transposed convolution as a matrix product", "transposed-conv"),
    _q("000", "Part 1-2", "Programming notebooks", PROGRAMMING),
    _q("001", "1(a)-(c)", "Answers to seed 000 Q1 (RNN gradients)", "rnn-bptt"),
    _q("001", "2", "Answers to seed 000 Q2 (vanishing gradients)", "rnn-bptt"),
    _q("001", "3", "Answer to seed 000 Q3 (interpolated AP)", "interpolated-ap"),
    _q("001", "4", "Answer to seed 000 Q4 (focal loss)", "focal-loss"),
    _q("001", "5", "Answer to seed 000 Q5 (IoU vs L2)", "iou-vs-l2"),
    _q("001", "6(a)-(b)", "Answers to seed 000 Q6 (transposed convolution)", "transposed-conv"),
    _q("002", "Q1.1", "Exploding vs vanishing gradients (computed)", "rnn-bptt"),
    _q("002", "Q1.2", "Sigmoid vs ReLU", ESSAY),
    _q("002", "Q1.3", "Update rules of six weights, tanh/sigmoid net", "mlp-tanh-sigmoid"),
    _q("002", "Q1.4", "Zero, one or random initialisation", "weight-init"),
    _q("002", "Q2.1", "Output size of a convolution ($J \\times K$, $M \\times N$, $s$, $P$)", "conv-arithmetic"),
    _q("002", "Q2.2", "Output size of max pooling", "conv-arithmetic"),
    _q("002", "Q2.3", "Fully connected layers as convolutions", "conv-arithmetic"),
    _q("002", "Q2.4-2.5", "Reading: ResNet, triplet loss (not to attempt)", ESSAY),
    _q("002", "Q3", "Hands-on challenge", PROGRAMMING),
    _q("003", "1.a", "LSTMs vs RNNs (computed: cell path vs RNN path)", "rnn-bptt"),
    _q("003", "1.b", "LSTM gates: equations, parameters, activations", "lstm-cell"),
    _q("003", "1.c", "Attention for translation (Bahdanau)", "bahdanau-attention"),
    _q("003", "2.a", "R-CNN family vs YOLO/SSD speed", ESSAY),
    _q("003", "2.b", "The RoI-pool layer", ESSAY),
    _q("003", "2.c", "mAP defined", "interpolated-ap"),
    _q("003", "3.a", "A loss for semantic segmentation", ESSAY),
    _q("003", "3.b", "Upsampling and skip connections in FCNs", ESSAY),
    _q("004", "Q1(a)-(d)", "Update rules: SGD, batch GD, momentum, Nesterov", "optimizers"),
    _q("004", "Q2", "One SGD step of a ReLU regression net", "mlp-relu-regression"),
    _q("004", "Q3", "Techniques against overfitting", CHOICE),
    _q("004", "Q4(a)-(f)", "Overfitting, batch norm, Adagrad, Nesterov, Adam, activations", CHOICE),
    _q("004", "Q5(a)", "Receptive field after two convolutions and a pool", "conv-arithmetic"),
    _q("004", "Q6", "Visualising CNNs", CHOICE),
    _q("004", "Q7(a)", "CNN table: activation shapes, weights, biases", "conv-arithmetic"),
    _q("004", "Q7(b)", "Softmax of [0.3, 0.3, 0.3, 0.3]", "softmax"),
    _q("004", "Q7(c)", "Reusing a trained network (transfer learning)", ESSAY),
]
