"""The PyTorch frontend: plain-torch models through torch.export against torch eager, and their ONNX exports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

import ember  # noqa: E402
from ember.frontend.torch import export_program, import_torch, output_spec  # noqa: E402
from tests.frontend.torch_zoo import zoo  # noqa: E402
from tests.helpers import assert_roundtrip  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                                        "ignore::UserWarning", "ignore::torch.jit.TracerWarning")

ZOO = zoo("test")
RTOL = 1e-4  # relative to the largest magnitude of each output (fp32)


def assert_close(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape and g.dtype == e.dtype, (i, g.shape, g.dtype, e.shape, e.dtype)
        scale = max(float(np.abs(e).max()), 1e-6) if e.size else 1.0
        err = float(np.abs(g.astype(np.float64) - e).max()) if e.size else 0.0
        assert err <= RTOL * scale, f"output {i}: max error {err:.3g} against magnitude {scale:.3g}"


def eager(model: nn.Module, inputs: tuple) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in pytree.tree_leaves(model(*inputs))]


def feeds(module, inputs: tuple) -> dict[str, np.ndarray]:
    return {name: t.numpy() for name, t in zip(module.input_names, inputs)}


@pytest.fixture(params=sorted(ZOO))
def exported(request):
    """(name, model, example inputs, eager outputs, exported program) for each zoo model."""
    build, make_inputs = ZOO[request.param]
    model, inputs = build(), make_inputs()
    return request.param, model, inputs, eager(model, inputs), export_program(model, inputs)


def test_zoo_model_compiled_matches_eager(exported):
    _name, _model, inputs, expected, program = exported
    graph = assert_roundtrip(import_torch(program))
    reference = ember.reference(graph)
    assert_close(reference.run(feeds(reference, inputs)), expected)
    compiled = ember.compile(graph)
    assert_close(compiled.run(feeds(compiled, inputs)), expected)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_onnx_export_compiles_to_the_same_answer(name, tmp_path):
    build, make_inputs = ZOO[name]
    model, inputs = build(), make_inputs()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, inputs, str(path), dynamo=False)
    compiled = ember.compile(str(path))
    assert_close(compiled.run(feeds(compiled, inputs)), eager(model, inputs))


class Structured(nn.Module):
    """Two named inputs; a tuple output holding a dict and a nested tuple, one output an input."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, image, mask):
        y = self.proj(image)
        return y, {"masked": y * mask, "pair": (torch.relu(y), image)}


def test_inputs_are_named_after_forward_arguments_and_outputs_flatten_in_pytree_order():
    model = Structured().eval()
    inputs = (torch.randn(2, 4), torch.rand(2, 3))
    program = export_program(model, inputs)
    mod = ember.compile(program)
    assert mod.input_names == ["image", "mask"]
    assert mod.output_names == ["output.0", "output.1.masked", "output.1.pair.0", "output.1.pair.1"]
    outputs = mod(*[t.numpy() for t in inputs])
    assert_close(outputs, eager(model, inputs))
    rebuilt = pytree.tree_unflatten(outputs, output_spec(program))
    assert set(rebuilt[1]) == {"masked", "pair"} and rebuilt[1]["pair"][1] is outputs[3]


class ManyOps(nn.Module):
    """One of (almost) every op family the converters handle, on tiny tensors."""

    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(2, 4)
        self.deconv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.conv1d = nn.Conv1d(4, 4, 3, groups=2, dilation=2, padding=2)
        self.embed = nn.Embedding(10, 6)

    def forward(self, x, q, ids):
        f = nn.functional
        halves = torch.cat([x, -x], 1)[:, 1:7:2].split([1, 2], 1)
        return (
            f.silu(x), f.hardswish(x), f.hardsigmoid(x), f.leaky_relu(x, 0.2), f.elu(x), f.gelu(x, approximate="tanh"),
            torch.tanh(x).exp(), torch.rsqrt(x.abs() + 1), x.pow(2),
            torch.clamp(x, min=-0.5), torch.clamp(x, max=0.5), f.relu6(x), torch.where(x > 0, x, 0.5 * x),
            (x >= 0.1) | (x < -0.1), x != 0, (ids > 3).float() + ids % 3 - ids // 1 * 0 + 1,
            f.avg_pool2d(x, 3, 1, 1), f.avg_pool2d(x, 2, count_include_pad=False, padding=1),
            f.max_pool2d(x, 3, 2, 1, ceil_mode=True), f.adaptive_avg_pool2d(x, 3), f.adaptive_avg_pool2d(x, 1),
            self.gn(x).transpose(1, 2).flatten(1).softmax(-1), f.log_softmax(x, dim=1),
            f.scaled_dot_product_attention(q, q, q), f.scaled_dot_product_attention(q, q, q, is_causal=True),
            halves[0], halves[1], x[:, 2], x[..., 1:-1], x.unsqueeze(0).squeeze(0).permute(0, 2, 3, 1),
            f.pad(x, (1, 2, 0, 1), value=0.5), self.deconv(x), self.conv1d(x.flatten(2)),
            x.amax(1), x.amin((2, 3), keepdim=True), x.max(1).values, x.min(-1).indices, x.argmax(1), x.sum(),
            x.mean((1, 3)), self.embed(ids), x.new_zeros(3) + torch.arange(3), x.expand(2, 2, 4, 6, 6).sum(0),
            torch.stack([x, x], 0).sum(0), torch.maximum(x, q.sum() * 0 + 0.1),
        )


@pytest.mark.parametrize("executor", ["reference", "compiled"])
def test_many_op_families_match_eager(executor):
    model = ManyOps().eval()
    inputs = (torch.randn(2, 4, 6, 6), torch.randn(1, 2, 4, 8), torch.randint(0, 10, (2, 5)))
    graph = assert_roundtrip(import_torch(export_program(model, inputs)))
    module = ember.reference(graph) if executor == "reference" else ember.compile(graph, opt_level=1)
    assert_close(module.run(feeds(module, inputs)), eager(model, inputs))


class Blocks(nn.Module):
    """Submodules using ops ember does not support (cumulative sums, flips)."""

    class Block(nn.Module):
        def forward(self, x):
            return torch.flip(torch.cumsum(x, 1), [0])

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3, 3), self.Block(), self.Block())

    def forward(self, x):
        return torch.cumsum(self.layers(x), 0)


def test_unsupported_ops_are_reported_together_with_module_paths():
    with pytest.raises(ember.EmberError) as info:
        ember.compile(Blocks(), example_inputs=(torch.randn(2, 3),))
    assert isinstance(info.value, ember.UnsupportedOpError)
    message = str(info.value)
    assert "aten.cumsum.default" in message and "aten.flip.default" in message
    assert "layers.1" in message and "layers.2" in message and "<top level" in message
    assert "2 unsupported ATen ops" in message


def test_torch_module_needs_example_inputs():
    with pytest.raises(ember.ModelError, match="example_inputs"):
        ember.reference(nn.ReLU())


def test_type_promotion_of_scalars_and_mixed_dtypes():
    class Mixed(nn.Module):
        def forward(self, ids, x):
            return ids * 0.5 + x, (ids > 2.5), ids + 1, (x * 3).to(torch.int64)

    model, inputs = Mixed(), (torch.arange(6).reshape(2, 3), torch.randn(2, 3))
    reference = ember.reference(model, example_inputs=inputs)
    got = reference.run(feeds(reference, inputs))
    expected = eager(model, inputs)
    assert [g.dtype for g in got] == [e.dtype for e in expected]
    assert_close(got, expected)


def test_ember_does_not_import_torch():
    code = ("import sys, numpy as np, ember\n"
            "from ember.ir import Graph, TensorType\n"
            "g = Graph(); x = g.add_input('x', TensorType('float32', (2,))); g.set_outputs([g.apply('Relu', [x])])\n"
            "ember.reference(g).run({'x': np.ones(2, np.float32)})\n"
            "assert 'torch' not in sys.modules, 'ember imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_linear_on_a_batch_of_sequences_reads_the_weight_once():
    """nn.Linear on a 3-D input decomposes to bmm with the weight expanded per batch; ember keeps one copy."""
    model = nn.Sequential(nn.Linear(8, 5), nn.ReLU()).eval()
    inputs = (torch.randn(3, 4, 8).permute(1, 0, 2),)  # non-contiguous: exported as bmm over an expand
    graph = import_torch(export_program(model, inputs))
    assert not [n for n in graph.nodes if n.op == "Expand"]
    reference = ember.reference(graph)
    assert_close(reference.run(feeds(reference, inputs)), eager(model, inputs))


def test_forward_that_updates_a_buffer_is_refused():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):
            self.calls.add_(1)
            return x * self.calls

    with pytest.raises(ember.UnsupportedOpError, match="updates calls in place"):
        ember.reference(Counter(), example_inputs=(torch.randn(2),))


def test_a_torch_module_tunes_and_compiles_with_its_records(tmp_path):
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU()).eval()
    x = torch.randn(4, 16)
    records = tmp_path / "records.jsonl"
    summary = ember.tune(model, example_inputs=(x,), records=records, trials_per_task=2, tuner="random",
                         progress=False)
    assert summary.table() and records.read_text().count("\n") >= 2
    module = ember.compile(model, example_inputs=(x,), records=records)
    assert_close(module.run(feeds(module, (x,))), eager(model, (x,)))
