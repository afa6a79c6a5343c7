"""ember: an ML compiler from ONNX and PyTorch models to native CPU code.

>>> import ember
>>> ref = ember.reference("model.onnx")          # doctest: +SKIP
>>> outputs = ref.run({"x": x})                   # doctest: +SKIP
"""

from ember.ir.errors import (
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

from .api import compile, load_graph, reference, tune

__version__ = "0.1.0"

__all__ = [
    "AttrError", "CompileError", "EmberError", "InputError", "ModelError", "ParseError", "ShapeError",
    "UnsupportedOpError", "VerifyError", "compile", "load_graph", "reference", "tune", "__version__",
]
