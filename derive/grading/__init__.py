"""Judging hand answers: reading them (answers, latex_reader), comparing
formulas as functions (compare), the judges of rules, paths and vector
formulas (judges), and the verdicts with their diagnoses (verdicts)."""
