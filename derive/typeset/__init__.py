"""How quantities are written: numbers (fmt), names and maths in LaTeX
(latex), expressions as text and LaTeX (printing), MathML (mathml), the block
records a solution is made of (blocks) and its figures (network, diagrams).
The bottom layer: everything else may use it, it uses nothing of derive's."""
