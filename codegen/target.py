"""Compilation targets: triple, CPU and features, and the vector width they give.

``Target.host()`` detects this machine's CPU through LLVM. Named targets pin
an x86-64 micro-architecture level, so code built for them runs on any CPU of
that level:

=============  ================================  ============
name           features                          vector bits
=============  ================================  ============
``x86-64``     SSE2 (every x86-64 CPU)           128
``x86-64-v2``  + SSE4.2, POPCNT                  128
``x86-64-v3``  + AVX2, FMA, F16C                 256
``x86-64-v4``  + AVX-512 F/BW/DQ/VL              512
=============  ================================  ============
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ember.ir.errors import CompileError

X86_LEVELS = {
    "x86-64": (),
    "x86-64-v2": ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16"),
    "x86-64-v3": ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "avx", "avx2", "fma", "f16c", "bmi",
                  "bmi2", "lzcnt", "movbe"),
    "x86-64-v4": ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "avx", "avx2", "fma", "f16c", "bmi",
                  "bmi2", "lzcnt", "movbe", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}


@dataclass(frozen=True)
class Target:
    """Where generated code runs: an LLVM triple, CPU name and the enabled feature set."""

    name: str
    triple: str
    cpu: str
    features: frozenset[str]

    @classmethod
    @lru_cache(maxsize=None)
    def host(cls) -> "Target":
        """This machine's CPU, as LLVM detects it."""
        import llvmlite.binding as llvm

        _init_llvm()
        features = llvm.get_host_cpu_features()
        enabled = frozenset(name for name, on in features.items() if on)
        return cls("host", llvm.get_process_triple(), llvm.get_host_cpu_name(), enabled)

    @classmethod
    def named(cls, name: str) -> "Target":
        """A target by name: ``host`` or an x86-64 level (see the module docstring)."""
        if name == "host":
            return cls.host()
        if name in X86_LEVELS:
            return cls(name, "x86_64-unknown-linux-gnu", name, frozenset(("sse", "sse2", "cx8", "mmx", "fxsr")
                                                                          + X86_LEVELS[name]))
        raise CompileError(f"unknown target {name!r}; choose host or one of {', '.join(X86_LEVELS)}")

    @property
    def vector_bits(self) -> int:
        """The widest vector register width the target has (bits)."""
        if "avx512f" in self.features:
            return 512
        if "avx" in self.features:
            return 256
        return 128

    def vector_lanes(self, dtype_bytes: int = 4) -> int:
        """Elements of ``dtype_bytes`` per vector register."""
        return self.vector_bits // (8 * dtype_bytes)

    def lanes_fitting(self, dtype_bytes: int, extent: int) -> int | None:
        """Lanes of the widest vector that ``extent`` elements of ``dtype_bytes`` fill at least once.

        Starts from a full register and halves it while it is wider than the loop, down to 128 bits
        (an SSE register: narrower vectors gain nothing). None when even that is too wide for
        ``extent``, so that a short loop on an AVX-512 target still runs as 8 or 4 lanes.
        """
        lanes = self.vector_lanes(dtype_bytes)
        while lanes > extent and lanes * dtype_bytes > 16:
            lanes //= 2
        return lanes if 2 <= lanes <= extent else None

    @property
    def has_fma(self) -> bool:
        return "fma" in self.features

    @property
    def feature_string(self) -> str:
        """LLVM's ``+feature,...`` string (only enabled features; the CPU implies the rest)."""
        return ",".join(f"+{f}" for f in sorted(self.features))

    def runs_on_host(self) -> list[str]:
        """Features this target needs that the host lacks (empty: the host can run its code)."""
        host = Target.host().features
        return sorted(f for f in self.features if f not in host)

    def __str__(self) -> str:
        return f"{self.name} (triple={self.triple}, cpu={self.cpu}, vector={self.vector_bits} bits)"


@lru_cache(maxsize=None)
def _init_llvm() -> None:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def as_target(target: "Target | str") -> Target:
    return target if isinstance(target, Target) else Target.named(target)
