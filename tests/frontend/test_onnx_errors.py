"""Bad models and bad feeds raise ember errors that name the node, op and reason."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import ember
from ember.examples import light_model_path


def model_of(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def relu_model(shape=(2, 3)):
    return model_of([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])


def test_truncated_file(tmp_path):
    data = light_model_path("squeezenet").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ember.ModelError, match="not a valid ONNX model"):
        ember.reference(path)


@pytest.mark.parametrize("content", [b"", b"hello, this is not a model\n", bytes(range(256)) * 4])
def test_not_onnx(tmp_path, content):
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    with pytest.raises(ember.ModelError, match="not a valid ONNX model"):
        ember.reference(path)


def test_missing_file():
    with pytest.raises(ember.ModelError, match="no such model file"):
        ember.reference("/nonexistent/model.onnx")


def test_every_unsupported_op_is_listed_at_once():
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("FancyOp", ["a"], ["b"], name="fancy1"),
             helper.make_node("OtherOp", ["b"], ["c"], name="other1"),
             helper.make_node("FancyOp", ["c"], ["y"], name="fancy2")]
    model = model_of(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(ember.UnsupportedOpError) as info:
        ember.reference(model)
    message = str(info.value)
    assert "2 unsupported ops" in message
    assert "FancyOp (nodes 'fancy1', 'fancy2')" in message and "OtherOp (node 'other1')" in message


def test_unsupported_domain():
    node = helper.make_node("FusedConv", ["x"], ["y"], domain="com.microsoft", name="fc")
    model = model_of([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(ember.UnsupportedOpError, match="com.microsoft.FusedConv"):
        ember.reference(model)


def test_unknown_attribute_names_node():
    model = model_of([helper.make_node("Relu", ["x"], ["y"], name="r", alpha=0.5)],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(ember.ModelError, match=r"node 'r' \(Relu\).*unknown attribute.*alpha"):
        ember.reference(model)


def test_shape_mismatch_names_node():
    model = model_of([helper.make_node("Add", ["x", "z"], ["y"], name="add7")],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                      helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ember.ShapeError, match=r"node 'add7' \(Add\).*broadcast"):
        ember.reference(model)


def test_dangling_input_names_node():
    model = model_of([helper.make_node("Relu", ["nowhere"], ["y"], name="r")],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(ember.ModelError, match=r"node 'r' \(Relu\).*'nowhere' is never defined"):
        ember.reference(model)


def test_runtime_shape_input_must_be_constant():
    model = model_of([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                      helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ember.UnsupportedOpError, match=r"node 'rs' \(Reshape\).*must be a constant"):
        ember.reference(model)


def test_symbolic_dims_need_binding():
    model = relu_model(("N", 3))
    with pytest.raises(ember.InputError, match=r"'x' has shape \(N, 3\).*input_shapes"):
        ember.reference(model)
    ref = ember.reference(model, input_shapes={"x": (5, 3)})
    assert ref.input_types[0].shape == (5, 3)
    with pytest.raises(ember.InputError, match="declared shape"):
        ember.reference(model, input_shapes={"x": (5, 4)})
    with pytest.raises(ember.InputError, match="not a graph input"):
        ember.reference(model, input_shapes={"q": (1,)})


def test_unsupported_input_dtype():
    model = model_of([helper.make_node("Identity", ["x"], ["y"])],
                     [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.STRING, [2])])
    with pytest.raises(ember.UnsupportedOpError, match="STRING"):
        ember.reference(model)


def test_used_unsupported_output_is_refused():
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2], name="mp"),
             helper.make_node("Cast", ["idx"], ["z"], to=TensorProto.FLOAT)]
    model = model_of(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4])],
                     [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    with pytest.raises(ember.UnsupportedOpError, match=r"node 'mp' \(MaxPool\): output 1 \('idx'\)"):
        ember.reference(model)


class TestFeeds:
    ref = None

    def setup_method(self):
        self.ref = ember.reference(relu_model())

    def test_good_feed(self):
        x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
        (y,) = self.ref.run({"x": x})
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        (y2,) = self.ref(x)
        np.testing.assert_array_equal(y2, y)

    @pytest.mark.parametrize("feeds, message", [
        ({}, "missing input.*'x'"),
        ({"x": np.zeros((2, 3), np.float32), "extra": 1}, "unknown input.*'extra'"),
        ({"x": np.zeros((2, 3), np.float64)}, "'x' has dtype float64, expected float32"),
        ({"x": np.zeros((3, 2), np.float32)}, r"'x' has shape \(3, 2\), expected \(2, 3\)"),
        ([np.zeros((2, 3), np.float32)], "must be a dict"),
    ])
    def test_bad_feeds(self, feeds, message):
        with pytest.raises(ember.InputError, match=message):
            self.ref.run(feeds)

    def test_wrong_positional_count(self):
        with pytest.raises(ember.InputError, match="expected 1 positional"):
            self.ref()


def test_identity_output_keeps_its_name():
    model = model_of([helper.make_node("Identity", ["x"], ["y"])],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    ref = ember.reference(model)
    assert ref.output_names == ["y"]
    x = np.array([1, 2], np.float32)
    np.testing.assert_array_equal(ref(x)[0], x)


def test_shape_subgraphs_fold_at_import():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["ones"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
             helper.make_node("Add", ["x", "ones"], ["y"])]
    model = model_of(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    graph = ember.load_graph(model)
    assert [n.op for n in graph.nodes] == ["Add"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(ember.reference(model)(x)[0], x + 1)


def test_input_values_fix_an_input():
    model = model_of([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                      helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    ref = ember.reference(model, input_values={"s": np.array([3, 2])})
    assert ref.input_names == ["x"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(ref(x)[0], x.reshape(3, 2))
    with pytest.raises(ember.InputError, match="input_values gives i32"):
        ember.reference(model, input_values={"s": np.array([3, 2], np.int32)})
