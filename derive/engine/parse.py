"""A safe parser for user expressions: Python's ``ast`` with an allow-list.

User text (spec right-hand sides, hand answers) is never given to ``eval``,
``sympify`` or ``parse_expr``.  It is parsed with :func:`ast.parse` and the tree
is walked here: numbers, declared names, ``+ - * / **``, unary minus,
parentheses and calls to the operation table are turned into SymPy objects
directly; anything else is refused with a message that says what and where.

>>> import sympy
>>> x = sympy.Symbol('x', real=True)
>>> parse_expr_safe("relu(2*x) + 0.1", {"x": x})
relu(2*x) + 1/10
>>> parse_expr_safe("__import__('os')", {"x": x})
Traceback (most recent call last):
...
derive.engine.parse.ExprError: name '__import__' is not allowed (dunder names are refused)
"""
from __future__ import annotations

import ast
import keyword
import re
import warnings
from contextlib import contextmanager

import sympy

from derive.engine.ops import OPS

MAX_TEXT = 4000        # characters in one expression
MAX_NODES = 800        # AST nodes in one expression
MAX_DEPTH = 40         # nesting of the AST
MAX_EXPONENT = 64      # |numeric exponent| in a ** b
MAX_NUMBER_TEXT = 40   # characters in one numeric literal
MAX_DIGITS = 1000      # digits of an exact number built by arithmetic (numerator or denominator)
MAX_LOG10 = 1000       # |log10| of a decimal number built by arithmetic
MAX_POWER = 256        # |exponent| of a name once powers combine: (x**64)**64 is x**4096

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ExprError(ValueError):
    """An expression was refused; the message says why."""


class ExprLimitError(ExprError):
    """An expression was refused for its size (too long, deep, large)."""


def check_name(name: str) -> str:
    """Validate a user-chosen quantity name; returns it or raises ExprError.

    >>> check_name("w1_11")
    'w1_11'
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ExprError(f"name {name!r} is not a valid name (letters, digits and _, starting with a letter)")
    if name.startswith("__") or "__" in name:
        raise ExprError(f"name {name!r} is not allowed (dunder names are refused)")
    if keyword.iskeyword(name):
        raise ExprError(f"name {name!r} is a Python keyword")
    if name in OPS:
        raise ExprError(f"name {name!r} is the name of an operation")
    if len(name) > 64:
        raise ExprError(f"name {name[:20]!r}... is longer than 64 characters")
    return name


def number(text_or_value) -> sympy.Expr:
    """A user number as SymPy: short decimals become exact rationals.

    >>> number(0.1), number("0.1875"), number(2)
    (1/10, 3/16, 2)
    """
    if isinstance(text_or_value, bool):
        raise ExprError(f"{text_or_value!r} is not a number")
    if isinstance(text_or_value, int):
        if abs(text_or_value) > 10**30:
            raise ExprError(f"number {str(text_or_value)[:20]}... is too large (more than 30 digits)")
        return sympy.Integer(text_or_value)
    if isinstance(text_or_value, float):
        if text_or_value != text_or_value or text_or_value in (float("inf"), float("-inf")):
            raise ExprError(f"{text_or_value!r} is not a finite number")
        text = repr(text_or_value)
    elif isinstance(text_or_value, str):
        text = text_or_value.strip()
    else:
        raise ExprError(f"{text_or_value!r} is not a number")
    if len(text) > MAX_NUMBER_TEXT:
        raise ExprError(f"number {text[:20]}... has more than {MAX_NUMBER_TEXT} characters")
    try:
        value = float(text)
    except ValueError:
        raise ExprError(f"{text!r} is not a number") from None
    if value != value or abs(value) == float("inf"):
        raise ExprError(f"{text!r} is not a finite number")
    mantissa = text.lower().split("e")[0]
    digits = len(mantissa.replace("-", "").replace("+", "").replace(".", "").lstrip("0"))
    exp_part = int(text.lower().split("e")[1]) if "e" in text.lower() else 0
    if digits <= 15 and abs(exp_part) <= 30:
        # A short decimal the user typed: keep it exact.
        return sympy.Rational(text)
    return sympy.Float(value)


#: how refused syntax is named in messages (Python's own names for the rest)
_SYNTAX_NAMES = {
    "Attribute": "attribute access (.)", "Subscript": "subscript ([...])", "Lambda": "lambda",
    "ListComp": "list comprehension", "SetComp": "set comprehension",
    "DictComp": "dict comprehension", "GeneratorExp": "generator expression",
    "JoinedStr": "f-string", "NamedExpr": "assignment (:=)", "Compare": "comparison",
    "BoolOp": "and/or", "IfExp": "if/else", "List": "list", "Tuple": "tuple", "Set": "set",
    "Dict": "dict", "Starred": "starred argument (*)", "Await": "await", "Yield": "yield",
    "YieldFrom": "yield",
}
_OPERATOR_NAMES = {
    "BitXor": "^ (write powers as **)", "MatMult": "@", "Mod": "%", "FloorDiv": "//",
    "BitAnd": "&", "BitOr": "|", "LShift": "<<", "RShift": ">>", "Invert": "~", "Not": "not",
}


def called_function(node: ast.Call, known) -> str:
    """The name a call calls, if it is one of ``known``; else ExprError."""
    if not isinstance(node.func, ast.Name):
        raise ExprError("only the operations of the table may be called (no attributes or subscripts)")
    fname = node.func.id
    if "__" in fname:
        raise ExprError(f"name {fname!r} is not allowed (dunder names are refused)")
    if fname not in known:
        raise ExprError(f"unknown function {fname!r}; known: {', '.join(sorted(known))}")
    return fname


class _Builder(ast.NodeVisitor):
    def __init__(self, names, funcs):
        self.names = names
        self.funcs = funcs

    def generic_visit(self, node):
        what = _SYNTAX_NAMES.get(type(node).__name__, type(node).__name__.lower())
        raise ExprError(f"{what} is not allowed in an expression")

    def visit_Expression(self, node):
        return self.visit(node.body)

    def visit_Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExprError(f"constant {node.value!r} is not a number")
        if isinstance(node.value, int) and abs(node.value) > 10**30:
            raise ExprLimitError("integer literal is too large")
        return number(node.value if isinstance(node.value, int) else repr(node.value))

    def visit_Name(self, node):
        name = node.id
        if "__" in name:
            raise ExprError(f"name {name!r} is not allowed (dunder names are refused)")
        if name in self.funcs:
            raise ExprError(f"{name!r} is an operation and must be called, as {name}(...)")
        if name not in self.names:
            err = ExprError(f"unknown name {name!r}")
            err.unknown_name = name  # lets a spec say "used before it is defined"
            raise err
        return self.names[name]

    def visit_UnaryOp(self, node):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise ExprError(f"operator {_OPERATOR_NAMES.get(type(node.op).__name__, type(node.op).__name__)} is not allowed")

    def visit_BinOp(self, node):
        if _is_sum(node):
            # a + b - c + ... is a left-leaning chain in the AST; walked as a
            # list so a long sum is not mistaken for deep nesting.
            terms = []
            while _is_sum(node):
                right = self.visit(node.right)
                terms.append(-right if isinstance(node.op, ast.Sub) else right)
                node = node.left
            terms.append(self.visit(node))
            return _bounded(sympy.Add(*reversed(terms)))
        left = self.visit(node.left)
        right = self.visit(node.right)
        symbol = _SYMBOLS.get(type(node.op))
        if symbol is None:
            name = type(node.op).__name__
            raise ExprError(f"operator {_OPERATOR_NAMES.get(name, name)} is not allowed")
        return arithmetic(symbol, left, right)

    def visit_Call(self, node):
        fname = called_function(node, self.funcs)
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise ExprError(f"{fname}() takes exactly one positional argument")
        arg = self.visit(node.args[0])
        with too_large(fname):
            return _bounded(self.funcs[fname](arg))


def _size(number) -> float:
    """The digits of an exact number (numerator or denominator), or the
    |log10| of a decimal one: what arithmetic on it costs."""
    if number.is_Rational:
        p, q = abs(int(number.p)), int(number.q)
        return max(p.bit_length(), q.bit_length()) * 0.30103
    if number.is_Float:
        m, e = sympy.Float(number)._mpf_[1:3] if number != 0 else (0, 0)
        return abs((int(m).bit_length() + e) * 0.30103) if m else 0.0
    return 0.0


def _largest(expr) -> float:
    return max((_size(a) for a in expr.atoms(sympy.Number)), default=0.0)


def _check_power_size(base, exponent) -> None:
    """Refuse a power whose exact value would be huge, before computing it:
    ``((9**64)**64)**64`` has about 3.7 million digits."""
    n = abs(float(exponent))
    digits = _largest(base) * n
    if digits > MAX_DIGITS:
        raise ExprLimitError(f"a power that large is not allowed (about {digits:.4g} digits; at most {MAX_DIGITS})")


def _bounded(expr):
    """A new result whose numbers and powers stay small enough to work with:
    every exact number at most MAX_DIGITS digits, every decimal within
    10^+-MAX_LOG10, every power of a name at most MAX_POWER.  Only the new
    top of the expression is looked at (its parts were checked when they
    were built), so the check costs as much as the result has terms."""
    for part in (expr, *expr.args):
        if part.is_Mul:
            part = part.args[0]           # the numeric coefficient, if any, comes first
        if part.is_Number:
            size = _size(part)
            if size > (MAX_LOG10 if part.is_Float else MAX_DIGITS):
                raise ExprLimitError(f"a number that large is not allowed (about {size:.4g} digits; "
                                     f"at most {MAX_DIGITS})")
        elif part.is_Pow and part.exp.is_Number and part.base.free_symbols and abs(part.exp) > MAX_POWER:
            raise ExprLimitError(f"a power of a name above {MAX_POWER} is not allowed once powers combine "
                                 f"(this one is {_short_number(part.exp)})")
    return expr


def _short_number(value) -> str:
    text = str(value)
    return text if len(text) <= 20 else f"{text[:12]}...({len(text)} digits)"


_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def arithmetic(symbol: str, left, right) -> sympy.Expr:
    """``left SYMBOL right`` for ``+ - * / **`` with the checks every
    expression builder shares (scalar specs, answers, vector specs): no
    division by zero, exponents at most MAX_EXPONENT, and results whose
    numbers and powers stay within the size bounds (checked before a power
    is computed).

    >>> x = sympy.Symbol("x")
    >>> arithmetic("**", x, sympy.Integer(2))
    x**2
    >>> arithmetic("**", arithmetic("**", x, sympy.Integer(64)), sympy.Integer(64))
    Traceback (most recent call last):
    ...
    derive.engine.parse.ExprLimitError: a power of a name above 256 is not allowed once powers combine (this one is 4096)
    """
    left, right = sympy.sympify(left), sympy.sympify(right)
    if symbol == "+":
        return _bounded(left + right)
    if symbol == "-":
        return _bounded(left - right)
    if symbol == "*":
        return _bounded(left * right)
    if symbol == "/":
        if right.is_zero:
            raise ExprError("division by zero")
        return _bounded(left / right)
    if right.is_Number:
        if abs(right) > MAX_EXPONENT:
            raise ExprLimitError(f"exponent {_short_number(right)} is larger than {MAX_EXPONENT} in absolute value")
        if left.is_zero and right.is_negative:
            raise ExprError("zero raised to a negative power")
        _check_power_size(left, right)
    elif not right.free_symbols:
        raise ExprError("a constant exponent must be a plain number")
    return _bounded(sympy.Pow(left, right))


@contextmanager
def too_large(fname: str):
    """SymPy evaluates an operation of a number at once (``exp(exp(1e300))``);
    a result too large for it is refused as a size error."""
    try:
        yield
    except (OverflowError, MemoryError):
        raise ExprLimitError(f"{fname}() of that value is too large to compute") from None


def _is_sum(node) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))


def _depth(node, limit):
    stack = [(node, 1)]
    count = 0
    while stack:
        cur, d = stack.pop()
        count += 1
        if d > limit:
            raise ExprLimitError(f"expression is nested deeper than {limit} levels")
        if count > MAX_NODES:
            raise ExprLimitError(f"expression has more than {MAX_NODES} parts")
        for child in ast.iter_child_nodes(cur):
            # the terms of one long sum are siblings, not nested levels
            same_sum = _is_sum(cur) and child is cur.left and _is_sum(child)
            stack.append((child, d if same_sum else d + 1))


def parse_expr_safe(text, names: dict, funcs: dict | None = None) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression over ``names`` (name -> Symbol).

    Numbers and bare numeric YAML values are accepted too.  Raises
    :class:`ExprError` with a one-line reason on anything outside the
    allow-list.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return number(text)
    funcs = funcs if funcs is not None else default_funcs()
    tree = parse_tree(text)
    try:
        return _Builder(names, funcs).visit(tree)
    except RecursionError:
        raise ExprLimitError("expression is too deeply nested") from None


def parse_tree(text) -> ast.Expression:
    """The checked ``ast`` of one expression: bounded in length, nesting and
    number of parts before and after parsing (for builders over other value
    types, such as :mod:`derive.problems.vector_spec`'s vectors and matrices).

    >>> type(parse_tree("w*x").body).__name__
    'BinOp'
    """
    if not isinstance(text, str):
        raise ExprError(f"expected an expression, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExprLimitError(f"expression is longer than {MAX_TEXT} characters")
    if "\x00" in text:
        raise ExprError("expression contains a NUL character")
    source = text.strip()
    if not source:
        raise ExprError("expression is empty")
    # Nesting is bounded before parsing: CPython's parser itself can blow its
    # stack on pathological input.
    depth = 0
    for ch in source:
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExprLimitError(f"expression is nested deeper than {MAX_DEPTH} levels")
        elif ch in ")]}":
            depth -= 1
    try:
        with warnings.catch_warnings():      # "invalid escape sequence" in a string: refused below anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error at column {exc.offset or 0}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression could not be parsed (too deep or malformed)") from None
    _depth(tree, MAX_DEPTH * 2)
    return tree


def default_funcs() -> dict:
    """Callables allowed in expressions: exactly the operation table."""
    return {name: op.sympy for name, op in OPS.items()}
