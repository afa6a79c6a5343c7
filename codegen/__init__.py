"""Code generation: targets and LLVM IR emission."""
