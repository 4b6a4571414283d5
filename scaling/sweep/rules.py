"""Per-size hyperparameter rules: tiny arithmetic expressions such as `0.003 * (256 / D) ** 0.5`.

A sweep file states how learning rate, batch size, ... scale with the model (`rules:`), and those
formulas are evaluated here over a fixed set of symbols. They are parsed with `ast` and walked by
hand: only numbers, the symbols, arithmetic and a handful of functions are accepted, so a sweep
file can never run code.
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

from scaling.errors import UserError

# What a rule may refer to (filled per run by the expander).
SYMBOLS = {
    "D": "model width", "L": "layers", "H": "attention heads", "F": "MLP width", "V": "vocabulary",
    "N": "non-embedding parameters", "N_active": "active non-embedding parameters (MoE: top-k experts)",
    "C": "compute budget in FLOPs (the sweep's convention)", "tokens": "training tokens of the run",
    "seq_len": "sequence length",
}

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "round": round, "int": int, "sqrt": math.sqrt, "log": math.log,
}

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    # Powers in floats: an integer tower like 10**10**10 would hang; a float one just overflows.
    ast.Pow: lambda a, b: float(a) ** float(b),
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def check_rule(expr: Any, where: str) -> None:
    """Parse-time check (no values needed), so a bad rule fails before anything runs."""
    if isinstance(expr, bool) or not isinstance(expr, (int, float, str)):
        raise UserError(f"{where}: expected a number or an expression string, got {type(expr).__name__}")
    if isinstance(expr, str):
        _walk(_parse(expr, where), None, where)


def rule_value(expr: Any, symbols: dict[str, float], where: str = "rule") -> float | int:
    """Value of a rule (a plain number, or an expression string) for one run's symbols."""
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        return expr
    check_rule(expr, where)
    return _walk(_parse(expr, where), symbols, where)


def _parse(expr: str, where: str) -> ast.Expression:
    try:
        return ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise UserError(f"{where}: cannot parse {expr!r} ({e.msg})") from None


def _walk(node: ast.AST, symbols: dict[str, float] | None, where: str) -> Any:
    """Evaluate `node`; with `symbols=None` only check that every node is allowed."""
    checking = symbols is None
    if isinstance(node, ast.Expression):
        return _walk(node.body, symbols, where)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in SYMBOLS:
            raise UserError(f"{where}: unknown name {node.id!r} (allowed: {', '.join(SYMBOLS)})")
        return 1 if checking else symbols[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left, symbols, where), _walk(node.right, symbols, where)
        return 1 if checking else _apply(_BINARY[type(node.op)], where, left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value = _walk(node.operand, symbols, where)
        return 1 if checking else _UNARY[type(node.op)](value)
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or node.keywords:
            raise UserError(f"{where}: only {', '.join(FUNCTIONS)} may be called (positional arguments)")
        args = [_walk(a, symbols, where) for a in node.args]
        return 1 if checking else _apply(FUNCTIONS[name], where, *args)
    raise UserError(f"{where}: {type(node).__name__} is not allowed in a rule "
                    "(numbers, symbols, + - * / // % **, and min/max/round/int/sqrt/log only)")


def _apply(fn: Callable[..., Any], where: str, *args: Any) -> Any:
    try:
        result = fn(*args)
    except (ArithmeticError, ValueError, TypeError) as e:
        raise UserError(f"{where}: {e}") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise UserError(f"{where}: result is not finite")
    return result
