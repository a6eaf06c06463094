"""The two MLP built-ins, defined by spec files like any user's network."""
from derive.problems import package_spec

PROBLEMS = [
    package_spec("mlp-tanh-sigmoid", source="seed 002, Q1.3", order=(2, 1, 3)),
    package_spec("mlp-relu-regression", source="seed 004, Q2", order=(4, 2)),
]
