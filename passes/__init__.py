"""Graph and loop-level passes (the pass manager and passes arrive with the optimizer)."""
