"""Turning an opaque XLA compilation failure into a named one."""

from __future__ import annotations

import re

import tensorflow as tf

from kerasblocks import _keras_compat

_OP = re.compile(r"XLA_\w+_JIT: (\w+) \(No registered")
_NODE = re.compile(r"\{\{node ([^}]+)\}\}")
_UNSUPPORTED = ("Detected unsupported operations", "XlaCompile", "tf2xla")


class XlaCompilationError(ValueError):
    """XLA could not compile a function; names the layer and the op.

    Attributes:
        layer_path: the name scope of the op (the Keras layer path), or "".
        op: the TensorFlow op type that has no XLA kernel, or "".
    """

    def __init__(self, what: str, layer_path: str, op: str, detail: str):
        self.layer_path = layer_path
        self.op = op
        where = f"layer '{layer_path}'" if layer_path else "the model"
        which = f"op {op}" if op else "an op"
        super().__init__(
            f"XLA cannot compile {what}: {where} uses {which}, which has no "
            f"XLA kernel on this device. Use mode='graph' for this model "
            f"(mode='auto' does so by itself). ({detail})"
        )


_SUFFIX = re.compile(r"_\d+$")


def resolve_layer_path(model, scope: str) -> str:
    """Maps a graph name scope ("net_1/block_2/hist_1") to the layer path
    ("net/block/hist"): tracing may add "_N" to scopes Keras has used."""
    if model is None or not scope:
        return scope
    parts = scope.split("/")
    names = [model.name]
    if (
        parts[0] not in (model.name,)
        and _SUFFIX.sub("", parts[0]) != model.name
    ):
        return scope
    layer = model
    for part in parts[1:]:
        children = {
            c.name: c
            for c in _keras_compat.flatten_layers(
                layer, include_self=False, recursive=False
            )
        }
        child = children.get(part) or children.get(_SUFFIX.sub("", part))
        if child is None:
            names.append(part)
            break
        names.append(child.name)
        layer = child
    return "/".join(names)


def diagnose(
    error: BaseException, what: str, model=None
) -> XlaCompilationError | None:
    """An `XlaCompilationError` for an XLA failure, None for any other."""
    if not isinstance(
        error, (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)
    ):
        return None
    message = str(error)
    if not any(marker in message for marker in _UNSUPPORTED):
        return None
    op_match = _OP.search(message)
    op = op_match.group(1) if op_match else ""
    layer_path = ""
    for node in _NODE.findall(message):
        parts = [
            p
            for p in node.split("/")
            if p
            and not p.startswith(("StatefulPartitionedCall", "PartitionedCall"))
        ]
        if len(parts) > 1:
            layer_path = resolve_layer_path(model, "/".join(parts[:-1]))
            break
    first_line = message.strip().splitlines()[0][:200]
    return XlaCompilationError(what, layer_path, op, first_line)
