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


def describe_failure(text: str) -> str:
    """One line naming the op and layer a converter's message blames."""
    ops = list(dict.fromkeys(_OP.findall(text)))
    layers = []
    for op_type, scope in _LOCATION.findall(text):
        parts = scope.split("/")
        # The scope is model/layer/.../Op: the layer is the last part
        # before the op's own name.
        layer = parts[-2] if len(parts) >= 2 else parts[0]
        if (not ops or f"tf.{op_type}" in ops) and layer not in layers:
            layers.append(layer)
    onnx = list(dict.fromkeys(_ONNX_OP.findall(text)))
    for item in onnx:
        # tf2onnx says "Tensorflow op [scope/layer/Op: Type] is not
        # supported".
        scope, _, op_type = item.partition(": ")
        ops.append(op_type or scope)
        parts = scope.split("/")
        if len(parts) >= 2 and parts[-2] not in layers:
            layers.append(parts[-2])
    if not ops:
        last = [line for line in text.strip().splitlines() if line.strip()]
        return last[-1].strip()[:300] if last else "unknown converter error"
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


def to_litert(request: dict) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        request["saved_model"], signature_keys=["serving_default"]
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


def to_onnx(request: dict) -> None:
    import tensorflow as tf
    import tf2onnx

    from kerasblocks._keras_compat import tf2onnx_lib

    tf2onnx_lib.patch_tf2onnx()
    # Held for the conversion: the signature only references the
    # loaded object's variables.
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
    tf2onnx.convert.from_function(
        function,
        input_signature=specs,
        opset=request.get("opset"),
        output_path=request["output"],
    )


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        request = json.load(f)
    try:
        if request["format"] == "litert":
            to_litert(request)
        else:
            to_onnx(request)
    except Exception as error:  # noqa: BLE001 - reported to the parent
        with open(request["error"], "w") as f:
            f.write(describe_failure(f"{type(error).__name__}: {error}"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
