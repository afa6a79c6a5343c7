"""The interface every executable module shares (reference and compiled).

>>> mod.input_names, mod.output_names          # doctest: +SKIP
>>> outputs = mod.run({"x": x})                 # list, in graph-output order  # doctest: +SKIP
>>> outputs = mod(x)                            # positional, in input order   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ember.ir import Graph, TensorType

from .feeds import positional_feeds, validate_feeds


class ModuleBase:
    """Feeds in, outputs out; subclasses implement :meth:`_execute` on validated arrays."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.input_names: list[str] = [v.name for v in graph.inputs]
        self.output_names: list[str] = [v.name for v in graph.outputs]
        self.input_types: list[TensorType] = [v.type for v in graph.inputs]
        self.output_types: list[TensorType] = [v.type for v in graph.outputs]

    def run(self, feeds: Mapping[str, Any]) -> list[np.ndarray]:
        """Run on ``feeds`` (input name -> array); returns the outputs in graph-output order."""
        return self._execute(validate_feeds(feeds, self.input_names, self.input_types))

    def __call__(self, *args: Any) -> list[np.ndarray]:
        """Run on positional inputs, in the order of :attr:`input_names`."""
        return self.run(positional_feeds(args, self.input_names))

    def random_feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the declared types (standard normal floats, small ints, random bools)."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for name, t in zip(self.input_names, self.input_types):
            if t.dtype.startswith("float"):
                feeds[name] = rng.standard_normal(t.shape).astype(t.dtype)
            elif t.dtype == "bool":
                feeds[name] = rng.random(t.shape) < 0.5
            else:
                feeds[name] = rng.integers(0, 10, t.shape).astype(t.dtype)
        return feeds

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError
