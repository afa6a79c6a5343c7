"""Tiny models (IR text) whose kernels have tunable knobs, for the autotuning tests."""

from __future__ import annotations

from pathlib import Path

# one pointwise kernel: knobs vector_chunk (1, 2, 4, ..., 64) and parallel (True, False)
ONE_RELU = """graph g(%x: f32[8,64]) {
  %y: f32[8,64] = Relu(%x)
  return %y
}
"""

# two Relu nodes of one workload, an Add+Relu group (anchor Relu 4x32), a MatMul
MIXED = """graph g(%x: f32[8,64], %y: f32[8,64], %z: f32[4,32], %w: f32[4,32], %v: f32[32,64]) {
  %a: f32[8,64] = Relu(%x)
  %b: f32[8,64] = Relu(%y)
  %s: f32[4,32] = Add(%z, %w)
  %c: f32[4,32] = Relu(%s)
  %m: f32[4,64] = MatMul(%w, %v)
  return %a, %b, %c, %m
}
"""


def write_model(directory: Path, text: str = ONE_RELU, name: str = "model.ember") -> str:
    """Write the IR text ``text`` to ``directory/name``; returns the path."""
    path = Path(directory) / name
    path.write_text(text)
    return str(path)
