"""Running one kernel on numpy arrays (for tests and the autotuner's measurements)."""

from __future__ import annotations

import ctypes
import llvmlite.ir as ir
import numpy as np

from ember.ir.errors import InputError
from ember.ir.loops import Kernel

from .jit import JitModule
from .llvm import emit_kernel
from .target import Target, as_target


class KernelFunction:
    """A JIT-compiled kernel callable on arrays: ``fn(*inputs) -> outputs``."""

    def __init__(self, kernel: Kernel, target: Target | str = "host"):
        self.kernel = kernel
        target = as_target(target)
        module = ir.Module(name=kernel.name)
        emit_kernel(module, kernel, linkage="external", target=target)
        self.jit = JitModule(module, target)
        self._fn = ctypes.CFUNCTYPE(ctypes.c_int32, *[ctypes.c_void_p] * len(kernel.params))(
            self.jit.address(kernel.name))

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        k = self.kernel
        if len(inputs) != k.num_inputs:
            raise InputError(f"kernel {k.name} takes {k.num_inputs} inputs, got {len(inputs)}")
        arrays = []
        for buf, a in zip(k.inputs, inputs):
            a = np.ascontiguousarray(a)
            if a.dtype != np.dtype(buf.dtype) or a.size != buf.size:
                raise InputError(f"kernel {k.name} input {buf.name} needs {buf.dtype}[{buf.size}], got "
                                 f"{a.dtype}[{a.size}]")
            arrays.append(a)
        outputs = [np.empty(b.shape, b.dtype) for b in k.outputs]
        workspaces = [np.empty(b.shape, b.dtype) for b in k.workspaces]
        status = self._fn(*[x.ctypes.data for x in arrays + outputs + workspaces])
        if status:
            raise InputError(k.checks()[status - 1], node=k.name)
        return outputs

    def assembly(self) -> str:
        return self.jit.assembly()


def compile_kernel(kernel: Kernel, target: Target | str = "host") -> KernelFunction:
    return KernelFunction(kernel, target)


__all__ = ["KernelFunction", "compile_kernel"]
