"""The child process that converts a SavedModel to LiteRT or ONNX.

Run as `python -m kerasblocks.io._convert REQUEST.json` by
`kerasblocks.io._conversion`. The TFLite converter keeps memory on every
call (TF 2.20/2.21), so conversion never runs in the caller's process.
The request names the SavedModel (its `serving_default` signature), the
output file, the format, the quantization and an `.npz` of calibration
inputs. On failure the child writes one line to the request's `error`
file, naming the op and the layer that could not be converted.
"""

from __future__ import annotations

import json
import re
import sys

# The converter prints the MLIR location of an op it cannot lower, e.g.
# loc(fused["Svd:", "functional_1/svd_layer/Svd@__inference_..."]) and
# "'tf.Svd' op is neither a custom op nor a flex op".
_OP = re.compile(r"'(tf\.\w+)' op")
_LOCATION = re.compile(r'\["(\w+):", "([^"@]+)')
_ONNX_OP = re.compile(r"(?:Tensorflow|TF) op \[([^\]]+)\]")
# onnxruntime: In Node, ("scope/layer_1/Op", OpType, "", -1) : ...
_ORT_NODE = re.compile(r'In Node, \("([^"]+)", (\w+),')


def _layer(scope: str, layer_names: list[str]) -> str | None:
    """The innermost layer of the model in an op's name scope; a traced
    scope may carry a `_1` suffix the layer's name does not."""
    for part in reversed(scope.split("/")[:-1]):
        if part in layer_names:
            return part
        stripped = re.sub(r"_\d+$", "", part)
        if stripped in layer_names:
            return stripped
    return None


def graph_nodes(request: dict) -> list[tuple[str, str]]:
    """(op type, node name) of every op of the SavedModel's serving
    function, nested functions included: a converter's message may name
    only the op type, and the node's name scope holds the layer."""
    concrete, _, _ = _serving_function(request)
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return [(node.op, node.name) for node in nodes]


def describe_failure(
    text: str,
    layer_names: list[str],
    nodes: list[tuple[str, str]] = (),
) -> str:
    """One line naming the op and layer a converter's message blames;
    `nodes` (`graph_nodes`) finds the layer of an op named by type only."""
    found: list[tuple[str, str]] = []  # (op type, scope)
    refused = set(_OP.findall(text))
    for op_type, name in nodes:
        if f"tf.{op_type}" in refused:
            found.append((f"tf.{op_type}", name))
    for op_type, scope in _LOCATION.findall(text):
        if not refused or f"tf.{op_type}" in refused:
            found.append((f"tf.{op_type}", scope))
    for item in _ONNX_OP.findall(text):
        # tf2onnx: "Tensorflow op [scope/layer/Op: Type] is not supported"
        scope, _, op_type = item.partition(": ")
        found.append((op_type or scope, scope))
    found += [(op, scope) for scope, op in _ORT_NODE.findall(text)]
    ops = list(dict.fromkeys([op for op, _ in found] + sorted(refused)))
    if not ops:
        last = [line for line in text.strip().splitlines() if line.strip()]
        return last[-1].strip()[:300] if last else "unknown converter error"
    layers = list(
        dict.fromkeys(
            layer
            for _, scope in found
            if (layer := _layer(scope, layer_names)) is not None
        )
    )
    where = f" in layer {', '.join(repr(x) for x in layers)}" if layers else ""
    return f"unsupported op {', '.join(ops)}{where}"


def output_order(outputs) -> list[str]:
    """`output_0`, `output_1`, ... in number order (not string order)."""
    return sorted(outputs, key=lambda k: int(k.rpartition("_")[2]))


def _calibration(path, names):
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        arrays = [data[str(i)] for i in range(len(names))]
    count = len(arrays[0])

    def generate():
        # One example per call: the calibrator records each tensor's range,
        # and batch 1 keeps its memory flat.
        for i in range(count):
            yield {n: a[i : i + 1] for n, a in zip(names, arrays, strict=True)}

    return generate


def _serving_function(request: dict):
    """The SavedModel's `serving_default` as a function of positional
    inputs in the model's order (a signature keeps them sorted by name),
    returning the outputs in the model's order; and the loaded object,
    which must stay alive while the function is used."""
    import tensorflow as tf

    # Loaded afresh for each job, even when jobs share the SavedModel: a
    # conversion may change the loaded object (reusing it broke the ONNX
    # conversion of inceptionv3 after its LiteRT one).
    loaded = tf.saved_model.load(request["saved_model"])
    serve = loaded.signatures["serving_default"]
    arguments = serve.structured_input_signature[1]
    names = request["input_names"]
    specs = [
        tf.TensorSpec(arguments[n].shape, arguments[n].dtype, name=n)
        for n in names
    ]
    outputs = output_order(serve.structured_outputs)

    def forward(*tensors):
        values = serve(**dict(zip(names, tensors, strict=True)))
        return [values[k] for k in outputs]

    function = tf.function(forward, input_signature=specs)
    return function.get_concrete_function(), outputs, loaded


def to_litert(request: dict) -> None:
    import tensorflow as tf

    concrete, _, loaded = _serving_function(request)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], loaded
    )
    # Builtins only: ai-edge-litert carries no TensorFlow (Flex) kernels,
    # so a Flex op would convert and then fail to run.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    quantize = request["quantize"]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _calibration(
            request["calibration"], request["input_names"]
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        if request["float_inputs"]:
            converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()
    with open(request["output"], "wb") as f:
        f.write(flatbuffer)


def _erfc_as_one_minus_erf(ctx, node, name, args):
    """tf2onnx has no rule for Erfc (exact GELU uses it); ONNX has Erf."""
    import numpy as np
    from tf2onnx import utils

    del name, args
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    node.type = "Erf"
    one = ctx.make_const(utils.make_name("one"), np.array(1, dtype=dtype))
    ctx.insert_new_node_on_output(
        "Sub", node.output[0], inputs=[one.output[0], node.output[0]]
    )


def _without_forced_xla(graph_def) -> None:
    """Drops the "always compile with XLA" mark (Keras's grouped
    convolution on CPU carries it) so that its function is inlined: ONNX
    has no function-call op."""
    for function in graph_def.library.function:
        function.attr.pop("_XlaMustCompile", None)
        function.attr.pop("_noinline", None)
        for node in function.node_def:
            node.attr.pop("_XlaMustCompile", None)
    for node in graph_def.node:
        node.attr.pop("_XlaMustCompile", None)


def to_onnx(request: dict) -> None:
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from kerasblocks._keras_compat import tf2onnx_lib

    tf2onnx_lib.patch_tf2onnx()
    concrete, outputs, loaded = _serving_function(request)
    names = request["input_names"]
    frozen = convert_variables_to_constants_v2(
        concrete, lower_control_flow=False, aggressive_inlining=True
    )
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    _without_forced_xla(graph_def)
    input_names = [t.name for t in frozen.inputs]
    output_names = [t.name for t in frozen.outputs]
    renames = dict(zip(input_names, names, strict=True))
    renames.update(zip(output_names, outputs, strict=True))
    tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=input_names,
        output_names=output_names,
        opset=request.get("opset"),
        custom_op_handlers={"Erfc": (_erfc_as_one_minus_erf, [])},
        tensors_to_rename=renames,
        output_path=request["output"],
    )
    import onnxruntime

    # A file onnxruntime refuses is a failed conversion, reported before
    # it can replace anything.
    onnxruntime.InferenceSession(
        request["output"], providers=["CPUExecutionProvider"]
    )


def main(argv: list[str]) -> int:
    """Converts the requests in order; stops at the first failure (exit
    1), since a converter that raised may leave TensorFlow's state
    broken for the next job: the parent starts a fresh child for the
    rest."""
    with open(argv[1]) as f:
        requests = json.load(f)
    for done, request in enumerate(requests):
        with open(argv[1] + ".progress", "w") as f:
            f.write(str(done))
        try:
            if request["format"] == "litert":
                to_litert(request)
            else:
                to_onnx(request)
        except Exception as error:  # noqa: BLE001 - reported to the parent
            try:
                nodes = graph_nodes(request)
            except Exception:  # noqa: BLE001 - the message alone will do
                nodes = []
            with open(request["error"], "w") as f:
                f.write(
                    describe_failure(
                        f"{type(error).__name__}: {error}",
                        request["layer_names"],
                        nodes,
                    )
                )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
