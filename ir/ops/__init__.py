"""The op registry and every op family.

Importing this package registers all ops. Each family lives in its own module;
see :mod:`ember.ir.ops.registry` for what an op definition holds.
"""

from . import (  # noqa: F401  (imported for their registrations)
    binary,
    conv,
    conv_blocked,
    data,
    elementwise,
    fused,
    layout,
    matmul,
    matmul_packed,
    norm,
    pool,
    pool_blocked,
    reduce,
    resize,
    shape,
    winograd,
)
from .registry import (
    REQUIRED,
    Attr,
    Float,
    Floats,
    Fusion,
    Int,
    Ints,
    OpDef,
    Str,
    define,
    get_op,
    is_registered,
    register,
    registered_ops,
)

__all__ = [
    "REQUIRED", "Attr", "Float", "Floats", "Fusion", "Int", "Ints", "OpDef", "Str",
    "define", "get_op", "is_registered", "register", "registered_ops",
]
