"""Example models that ship inside the onnx wheel, addressable as ``light:NAME``.

The onnx package carries real architectures with constant weights under
``onnx/backend/test/data/light/`` (ResNet-50, SqueezeNet, VGG-19, ...):

>>> resolve_model("light:squeezenet")              # doctest: +SKIP
'.../onnx/backend/test/data/light/light_squeezenet.onnx'
"""

from __future__ import annotations

import os
from pathlib import Path

from ember.ir.errors import ModelError

LIGHT_MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
                "squeezenet", "vgg19", "zfnet512")


def onnx_test_data() -> Path:
    """The onnx wheel's backend test data directory."""
    import onnx

    return Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"


def light_model_path(name: str) -> Path:
    """Path of the light model ``name`` (e.g. ``"resnet50"``)."""
    name = name.removeprefix("light_")
    if name not in LIGHT_MODELS:
        raise ModelError(f"unknown example model light:{name}; choose one of {', '.join(LIGHT_MODELS)}")
    return onnx_test_data() / "light" / f"light_{name}.onnx"


def resolve_model(model):
    """``light:NAME`` becomes the example's path; anything else is returned unchanged."""
    if isinstance(model, str) and model.startswith("light:"):
        return str(light_model_path(model.split(":", 1)[1]))
    return model
