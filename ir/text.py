"""The IR text format: a printer and a parser that round-trip.

::

    graph main(%x: f32[1,4]) {
      %w: f32[4,4] = const b64"AACAPw..."        # > 16 elements: raw little-endian bytes
      %k: i64[2] = const [1, -1]                  # small: the elements, flat
      %z: f32[4] = const splat(0.5)               # every element equal
      %h: f32[1,4] = MatMul(%x, %w)
      %y: f32[1,4] = LeakyRelu(%h) {alpha=0.2}    # attributes that differ from the default
      %a: f32[1,2], %b: f32[1,2] = Split(%y) {axis=1, num_outputs=2} @"split0"
      return %a, %b
    }

A node's name is printed (``@"..."``) only when it differs from its first
output's name. ``parse(print(g)) == g`` holds for every graph;
``print_graph(g, elide_constants=True)`` prints large constants as
``const elided``, which only :func:`parse` with ``allow_elided=True`` reads
(as zeros).
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import numpy as np

from .errors import EmberError, ParseError
from .graph import Graph, Node, Value
from .ops import get_op
from .types import DTYPES, SHORT_DTYPES, TensorType

SMALL_CONSTANT = 16
_IDENT = re.compile(r"[A-Za-z0-9_./\-]+\Z")


# ==================================================================== printing
def _name(name: str) -> str:
    return name if _IDENT.match(name) else json.dumps(name)


def _scalar(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)
    return str(int(x))


def _attr(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return _scalar(value)


def _literal(array: np.ndarray, elide: bool) -> str:
    flat = array.reshape(-1)
    if flat.size > 1 and np.all(flat == flat[0]) and not (flat.dtype.kind == "f" and np.isnan(flat[0])):
        return f"splat({_scalar(flat[0])})"
    if flat.size <= SMALL_CONSTANT:
        return "[" + ", ".join(_scalar(v) for v in flat.tolist()) + "]"
    if elide:
        return "elided"
    data = np.ascontiguousarray(flat, dtype=flat.dtype.newbyteorder("<")).tobytes()
    return f'b64"{base64.b64encode(data).decode()}"'


def print_graph(graph: Graph, *, elide_constants: bool = False) -> str:
    """The text of ``graph`` (see the module docstring)."""
    params = ", ".join(f"%{_name(v.name)}: {v.type}" for v in graph.inputs)
    lines = [f"graph {_name(graph.name)}({params}) {{"]
    for c in graph.constants():
        lines.append(f"  %{_name(c.name)}: {c.type} = const {_literal(c.data, elide_constants)}")
    for node in graph.nodes:
        lines.append("  " + print_node(node))
    lines.append("  return " + ", ".join(f"%{_name(v.name)}" for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


def print_node(node: Node) -> str:
    """One node as a line of IR text (no indentation)."""
    outs = ", ".join(f"%{_name(v.name)}: {v.type}" for v in node.outputs)
    args = ", ".join(f"%{_name(v.name)}" for v in node.inputs)
    text = f"{outs} = {node.op}({args})"
    decls = get_op(node.op).attrs
    shown = {k: v for k, v in node.attrs.items() if k not in decls or v != decls[k].default}
    if shown:
        text += " {" + ", ".join(f"{k}={_attr(v)}" for k, v in shown.items()) + "}"
    if node.name != node.outputs[0].name:
        text += f" @{json.dumps(node.name)}"
    return text


# ==================================================================== parsing
_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+|\#[^\n]*)
  | (?P<b64>b64"[A-Za-z0-9+/=]*")
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<value>%(?:[A-Za-z0-9_./\-]+|"(?:[^"\\]|\\.)*"))
  | (?P<node>@"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z0-9_]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_./\-]*)
  | (?P<punct>[()\[\]{},=:])
""", re.VERBOSE)


class _Tokens:
    def __init__(self, text: str):
        self.text = text
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self.error(f"unexpected character {text[pos]!r}", pos)
            if m.lastgroup != "space":
                self.items.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.items.append(("eof", "", len(text)))
        self.i = 0

    def error(self, reason: str, pos: int | None = None) -> ParseError:
        pos = self.items[self.i][2] if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return ParseError(f"line {line}, column {col}: {reason}")

    def peek(self) -> tuple[str, str]:
        kind, text, _ = self.items[self.i]
        return kind, text

    def take(self, kind: str | None = None, text: str | None = None) -> str:
        k, t = self.peek()
        if (kind and k != kind) or (text and t != text):
            raise self.error(f"expected {text or kind}, found {t or 'end of text'!r}")
        self.i += 1
        return t

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] in ("punct", "ident"):
            self.i += 1
            return True
        return False


def _unquote(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


def _parse_scalar(tokens: _Tokens) -> Any:
    kind, text = tokens.peek()
    if kind == "number":
        tokens.take()
        return float(text) if re.search(r"[.eEna]", text) else int(text)
    if kind == "ident" and text in ("true", "false"):
        tokens.take()
        return text == "true"
    if kind == "string":
        tokens.take()
        return json.loads(text)
    raise tokens.error(f"expected a number, true/false or a string, found {text!r}")


def _parse_list(tokens: _Tokens) -> list:
    tokens.take("punct", "[")
    items = []
    while not tokens.accept("]"):
        if items:
            tokens.take("punct", ",")
        items.append(_parse_scalar(tokens))
    return items


def _parse_type(tokens: _Tokens) -> TensorType:
    short = tokens.take("ident")
    if short not in SHORT_DTYPES:
        raise tokens.error(f"unknown dtype {short!r} (expected one of {', '.join(DTYPES.values())})")
    dims = _parse_list(tokens)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise tokens.error("dimensions must be integers")
    return TensorType(SHORT_DTYPES[short], tuple(dims))


def _parse_constant(tokens: _Tokens, type: TensorType, allow_elided: bool) -> np.ndarray:
    kind, text = tokens.peek()
    dtype = type.np_dtype
    if kind == "b64":
        tokens.take()
        raw = base64.b64decode(text[4:-1])
        if len(raw) != type.nbytes:
            raise tokens.error(f"constant holds {len(raw)} bytes, its type {type} needs {type.nbytes}")
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(type.shape)
    if text == "splat":
        tokens.take()
        tokens.take("punct", "(")
        value = _parse_scalar(tokens)
        tokens.take("punct", ")")
        return np.full(type.shape, value, dtype=dtype)
    if text == "elided":
        tokens.take()
        if not allow_elided:
            raise tokens.error("constant data was elided when printing; this text cannot be parsed exactly")
        return np.zeros(type.shape, dtype=dtype)
    items = _parse_list(tokens)
    if len(items) != type.size:
        raise tokens.error(f"constant has {len(items)} elements, its type {type} needs {type.size}")
    return np.array(items, dtype=dtype).reshape(type.shape)


def parse(text: str, *, allow_elided: bool = False) -> Graph:
    """Parse IR text into a :class:`Graph` (see the module docstring for the format).

    Errors are :class:`ParseError` with line and column, or the usual
    type-inference errors naming the node; the declared output types must
    equal the inferred ones.
    """
    tokens = _Tokens(text)
    tokens.take("ident", "graph")
    kind, name = tokens.peek()
    if kind not in ("ident", "string"):
        raise tokens.error("expected the graph's name")
    tokens.take()
    graph = Graph(_unquote(name))
    env: dict[str, Value] = {}

    def define(name: str, value: Value) -> None:
        if name in env:
            raise tokens.error(f"value %{name} is defined twice")
        env[name] = value

    def lookup() -> Value:
        name = _unquote(tokens.take("value")[1:])
        if name not in env:
            raise tokens.error(f"value %{name} is used before it is defined")
        return env[name]

    tokens.take("punct", "(")
    while not tokens.accept(")"):
        if graph.inputs:
            tokens.take("punct", ",")
        name = _unquote(tokens.take("value")[1:])
        tokens.take("punct", ":")
        define(name, graph.add_input(name, _parse_type(tokens)))
    tokens.take("punct", "{")
    while not tokens.accept("return"):
        _parse_statement(tokens, graph, define, lookup, allow_elided)
    outputs = [lookup()]
    while tokens.accept(","):
        outputs.append(lookup())
    tokens.take("punct", "}")
    tokens.take("eof")
    graph.set_outputs(outputs)
    return graph


def _parse_statement(tokens: _Tokens, graph: Graph, define, lookup, allow_elided: bool) -> None:
    results: list[tuple[str, TensorType]] = []
    while True:
        name = _unquote(tokens.take("value")[1:])
        tokens.take("punct", ":")
        results.append((name, _parse_type(tokens)))
        if not tokens.accept(","):
            break
    tokens.take("punct", "=")
    if tokens.accept("const"):
        if len(results) != 1:
            raise tokens.error("a constant defines one value")
        name, vtype = results[0]
        define(name, graph.add_constant(_parse_constant(tokens, vtype, allow_elided), name))
        return
    op = tokens.take("ident")
    tokens.take("punct", "(")
    args: list[Value] = []
    while not tokens.accept(")"):
        if args:
            tokens.take("punct", ",")
        args.append(lookup())
    attrs: dict[str, Any] = {}
    if tokens.accept("{"):
        while not tokens.accept("}"):
            if attrs:
                tokens.take("punct", ",")
            key = tokens.take("ident")
            tokens.take("punct", "=")
            attrs[key] = _parse_list(tokens) if tokens.peek()[1] == "[" else _parse_scalar(tokens)
    node_name = None
    if tokens.peek()[0] == "node":
        node_name = json.loads(tokens.take()[1:])
    for name, _ in results:
        if name in graph._names:
            raise tokens.error(f"value %{name} is defined twice")
    try:
        node = graph.add_node(op, args, attrs, name=node_name, output_names=[n for n, _ in results])
    except EmberError as err:
        raise err.__class__(f"{tokens.error('').reason.rstrip(': ')}: {err.reason}", node=err.node, op=err.op) from None
    for out, (name, declared) in zip(node.outputs, results):
        if out.type != declared:
            raise tokens.error(f"%{name} is declared {declared} but {op} infers {out.type}")
        define(name, out)
