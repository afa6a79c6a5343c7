"""Optimizing and JIT-compiling LLVM modules for a :class:`Target`."""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import llvmlite.ir as ir

from ember.ir.errors import CompileError

from .target import Target, _init_llvm


def target_machine(target: Target, opt: int = 3) -> "llvm.TargetMachine":
    _init_llvm()
    llvm_target = llvm.Target.from_triple(target.triple)
    return llvm_target.create_target_machine(cpu=target.cpu, features=target.feature_string, opt=opt,
                                             reloc="pic", codemodel="jitdefault", jit=True)


def optimize(module: "llvm.ModuleRef", tm: "llvm.TargetMachine", level: int = 3) -> None:
    """Run LLVM's default ``O<level>`` pipeline (new pass manager) on ``module``."""
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
    pto.loop_vectorization = level >= 2
    pto.slp_vectorization = level >= 2
    # ember's schedules say what to unroll: every loop's metadata tells LLVM's unroller to unroll
    # it fully, by a factor, or not at all (codegen.llvm.loop_metadata)
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    pm.run(module, pb)


class JitModule:
    """A compiled module living in an LLVM execution engine; look up functions by name."""

    def __init__(self, module: ir.Module, target: Target, opt_level: int = 3):
        missing = target.runs_on_host()
        if missing:
            raise CompileError(f"target {target.name} needs CPU features this machine lacks "
                               f"({', '.join(missing)}); it cannot run here")
        _init_llvm()
        module.triple = target.triple
        self.tm = target_machine(target)
        module.data_layout = str(self.tm.target_data)
        try:
            self.llvm_module = llvm.parse_assembly(str(module))
            self.llvm_module.verify()
        except RuntimeError as err:
            raise CompileError(f"generated LLVM IR is invalid: {err}") from None
        if opt_level > 0:
            optimize(self.llvm_module, self.tm, opt_level)
        self.engine = llvm.create_mcjit_compiler(self.llvm_module, self.tm)
        self.engine.finalize_object()
        self.engine.run_static_constructors()

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise CompileError(f"function {name} was not compiled")
        return addr

    def function(self, name: str, *argtypes) -> ctypes._CFuncPtr:
        return ctypes.CFUNCTYPE(None, *argtypes)(self.address(name))

    def assembly(self) -> str:
        return self.tm.emit_assembly(self.llvm_module)
