"""Generated numpy modules: from the scalar derivation (scalar) and,
vectorised, from the matrix steps (matrix)."""
