"""Code generation: targets, loop IR -> LLVM IR, JIT compilation."""

from .target import Target, as_target

__all__ = ["Target", "as_target"]
