"""The loop-level IR: compute definitions, schedules, loop nests.

>>> from ember.ir.loops import placeholder, compute, create_schedule, lower
>>> x = placeholder((6,), "float32", "x")
>>> y = compute((6,), lambda i: x[i] * 2.0, "y")
>>> s = create_schedule(y)
>>> print(lower(s, [x], "double"))               # doctest: +NORMALIZE_WHITESPACE
kernel double(in x: f32[6], out y: f32[6]) {
  for (y_i0, 0, 6) {
    y[y_i0] = (x[y_i0] * 2.0f)
  }
}
"""

from .expr import (INDEX, Binary, Call, Cast, Compare, Const, Expr, Load, Not, Select, Var, as_expr, call, cast,
                   const, guarded_select, logical_and, logical_not, logical_or, maximum, minimum, select)
from .lower import LoweringError, flat_index, lower
from .printer import print_expr, print_kernel, print_stmt
from .schedule import Schedule, ScheduleError, Stage, create_schedule
from .simplify import simplify
from .stmt import Allocate, Buffer, Check, For, If, Kernel, Let, Prefetch, Seq, Stmt, Store, for_range, seq
from .tensor import (ExternOp, IterVar, Reduce, Tensor, TensorRead, compute, extern, placeholder, reduce_axis,
                     reduce_max,
                     reduce_min, reduce_prod, reduce_sum)

__all__ = [
    "INDEX", "Binary", "Call", "Cast", "Compare", "Const", "Expr", "Load", "Not", "Select", "Var", "as_expr", "call",
    "cast", "const", "guarded_select", "logical_and", "logical_not", "logical_or", "maximum", "minimum", "select", "LoweringError",
    "flat_index", "lower", "print_expr", "print_kernel", "print_stmt", "Schedule", "ScheduleError", "Stage",
    "create_schedule", "simplify", "Allocate", "Buffer", "Check", "For", "If", "Kernel", "Let", "Prefetch", "Seq", "Stmt", "Store",
    "for_range", "seq", "ExternOp", "extern",
    "IterVar", "Reduce", "Tensor", "TensorRead", "compute", "placeholder", "reduce_axis", "reduce_max", "reduce_min",
    "reduce_prod", "reduce_sum",
]
