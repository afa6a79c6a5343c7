"""ember's graph IR: typed SSA values and nodes, the op registry, text format, verifier.

>>> from ember.ir import Graph, TensorType, parse, verify
>>> g = parse('''
... graph g(%x: f32[2]) {
...   %y: f32[2] = Relu(%x)
...   return %y
... }''')
>>> verify(g) == parse(str(g))
True
"""

from . import ops
from .compare import graph_difference, graphs_equal
from .errors import (
    AttrError,
    CompileError,
    EmberError,
    InputError,
    ModelError,
    ParseError,
    ShapeError,
    UnsupportedOpError,
    VerifyError,
)
from .graph import Graph, Node, Value
from .text import parse, print_graph
from .types import DTYPES, TensorType
from .verify import verify

__all__ = [
    "ops", "graph_difference", "graphs_equal", "AttrError", "CompileError", "EmberError", "InputError",
    "ModelError", "ParseError", "ShapeError", "UnsupportedOpError", "VerifyError", "Graph", "Node", "Value",
    "parse", "print_graph", "DTYPES", "TensorType", "verify",
]
