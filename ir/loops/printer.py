"""Printing loop-level IR: expressions, statements and kernels as C-like text.

::

    kernel relu(in x: f32[6], out y: f32[6]) {
      for (i0, 0, 6) {
        y[i0] = max(x[i0], 0.0f)
      }
    }
"""

from __future__ import annotations

from .expr import Binary, Call, Cast, Compare, Const, Expr, Load, Not, Ramp, Select, Var
from .stmt import Allocate, Check, For, If, Kernel, Let, Prefetch, Seq, Stmt, Store
from ..types import DTYPES

_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "floormod": "%",
            "and": "&&", "or": "||", "xor": "^", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==",
            "ne": "!="}


def print_expr(e: Expr) -> str:
    from .tensor import Reduce, TensorRead

    if isinstance(e, Const):
        if e.dtype == "float32":
            return f"{e.value!r}f"
        return repr(e.value) if e.dtype in ("int64", "bool", "float64") else f"{e.value!r}:{DTYPES[e.dtype]}"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, (Binary, Compare)):
        symbol = _SYMBOLS.get(e.op)
        if e.op in ("and", "or") and e.dtype != "bool":
            symbol = "&" if e.op == "and" else "|"  # bitwise on integers
        if symbol:
            return f"({print_expr(e.a)} {symbol} {print_expr(e.b)})"
        return f"{e.op}({print_expr(e.a)}, {print_expr(e.b)})"
    if isinstance(e, Not):
        return f"!{print_expr(e.a)}"
    if isinstance(e, Select):
        return f"select({print_expr(e.cond)}, {print_expr(e.a)}, {print_expr(e.b)})"
    if isinstance(e, Cast):
        return f"{DTYPES[e.dtype]}({print_expr(e.a)})"
    if isinstance(e, Call):
        return f"{e.name}({', '.join(print_expr(a) for a in e.args)})"
    if isinstance(e, Load):
        return f"{e.buffer.name}[{print_expr(e.index)}]"
    if isinstance(e, Ramp):
        return f"ramp({print_expr(e.base)}, {e.stride}, {e.lanes})"
    if isinstance(e, TensorRead):
        return f"{e.tensor.name}[{', '.join(print_expr(i) for i in e.indices)}]"
    if isinstance(e, Reduce):
        axes = ", ".join(f"{a.name}:{a.extent}" for a in e.axes)
        return f"{e.combiner}({print_expr(e.source)}, axes=[{axes}])"
    return repr(e)


def print_stmt(s: Stmt, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(s, Seq):
        return "".join(print_stmt(x, indent) for x in s.stmts)
    if isinstance(s, For):
        kind = "" if s.kind == "serial" else f" {s.kind}"
        kind += f" unroll_by={s.unroll_by}" if s.unroll_by > 1 else ""
        return f"{pad}for{kind} ({s.var.name}, 0, {s.extent}) {{\n{print_stmt(s.body, indent + 1)}{pad}}}\n"
    if isinstance(s, Store):
        return f"{pad}{s.buffer.name}[{print_expr(s.index)}] = {print_expr(s.value)}\n"
    if isinstance(s, Prefetch):
        return f"{pad}prefetch {s.buffer.name}[{print_expr(s.index)}]\n"
    if isinstance(s, If):
        text = f"{pad}if ({print_expr(s.cond)}) {{\n{print_stmt(s.then, indent + 1)}{pad}}}"
        if s.otherwise is not None:
            text += f" else {{\n{print_stmt(s.otherwise, indent + 1)}{pad}}}"
        return text + "\n"
    if isinstance(s, Check):
        return f"{pad}check({print_expr(s.cond)}, {s.message!r})\n"
    if isinstance(s, Let):
        return f"{pad}let {s.var.name} = {print_expr(s.value)}\n{print_stmt(s.body, indent)}"
    if isinstance(s, Allocate):
        b = s.buffer
        return (f"{pad}allocate {b.name}: {DTYPES[b.dtype]}[{','.join(map(str, b.shape))}]\n"
                f"{print_stmt(s.body, indent)}")
    return f"{pad}{s!r}\n"


def print_kernel(k: Kernel) -> str:
    def param(i, b):
        role = "in" if i < k.num_inputs else "out" if i < k.num_inputs + k.num_outputs else "workspace"
        return f"{role} {b.name}: {DTYPES[b.dtype]}[{','.join(map(str, b.shape))}]"

    params = ", ".join(param(i, b) for i, b in enumerate(k.params))
    return f"kernel {k.name}({params}) {{\n{print_stmt(k.body, 1)}}}\n"
