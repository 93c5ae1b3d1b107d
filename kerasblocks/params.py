"""Parameter management: named access, tables, counting, re-init, tying.

Variables are addressed by `Variable.path` (for example
`"mlp/hidden/kernel"`) with shell-style wildcards. A variable reached
through a layer that the model uses more than once (a tied layer) is
listed once, with its tie group.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections import Counter
from collections.abc import Callable, Mapping

import keras

from kerasblocks import _keras_compat
from kerasblocks.deferred import require_built


def unique_variables(model: keras.layers.Layer) -> list:
    """The model's weights (trainable and not), each once, in Keras's
    order. Random-generator states and metric accumulators, which Keras
    also lists in `model.variables`, are not parameters and are left
    out."""
    require_built(model)
    seen, result = set(), []
    for variable in model.weights:
        if id(variable) not in seen:
            seen.add(id(variable))
            result.append(variable)
    return result


def _match(model: keras.layers.Layer, pattern: str, allow_empty: bool) -> list:
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string. Received: {pattern!r}")
    variables = unique_variables(model)
    matched = [v for v in variables if fnmatch.fnmatchcase(v.path, pattern)]
    if not matched and not allow_empty:
        sample = ", ".join(v.path for v in variables[:4])
        more = "" if len(variables) <= 4 else f", ... ({len(variables)} in all)"
        raise ValueError(
            f"No parameter of '{model.name}' matches {pattern!r}. "
            f"Paths look like: {sample or '(none)'}{more}"
        )
    return matched


def named_parameters(
    model: keras.layers.Layer, pattern: str = "*", *, allow_empty: bool = False
) -> dict[str, keras.Variable]:
    """Returns the model's variables whose path matches `pattern`.

    Args:
        model: a built Keras layer or model.
        pattern: shell-style wildcard on `Variable.path`, e.g.
            `"*/hidden/kernel"` or `"*bias"`.
        allow_empty: return `{}` instead of raising when nothing matches.

    Returns:
        `{path: variable}` in the model's order; tied variables once.

    Raises:
        NotBuiltError: the model is not built yet.
        ValueError: nothing matches (unless `allow_empty`).

    Example:

    >>> import kerasblocks
    >>> net = kerasblocks.layers.MLP(name="mlp")
    >>> _ = kerasblocks.materialize(net, (None, 20))
    >>> list(kerasblocks.params.named_parameters(net, "*kernel"))
    ['mlp/hidden/kernel', 'mlp/out/kernel']
    """
    return {v.path: v for v in _match(model, pattern, allow_empty)}


def count_parameters(
    model: keras.layers.Layer, trainable_only: bool = False
) -> int:
    """Number of scalar parameters, counting each tied variable once.

    Example:

    >>> import kerasblocks
    >>> net = kerasblocks.layers.MLP()
    >>> _ = kerasblocks.materialize(net, (None, 20))
    >>> kerasblocks.params.count_parameters(net)
    7946
    """
    return sum(
        math.prod(v.shape)
        for v in unique_variables(model)
        if v.trainable or not trainable_only
    )


def _children(layer: keras.layers.Layer) -> list:
    """Direct sublayers, with a layer repeated once per use."""
    if isinstance(layer, keras.Sequential):
        return list(layer.layers)
    if hasattr(layer, "_layer_list"):  # SequentialBlock, Parallel
        return list(layer._layer_list())
    by_depth = _keras_compat.nodes_by_depth(layer)
    if isinstance(layer, keras.Model) and by_depth is not None:
        # A Functional model: one entry per call of a layer in its graph.
        return [
            node.operation
            for depth in sorted(by_depth, reverse=True)
            for node in by_depth[depth]
            if not isinstance(node.operation, keras.layers.InputLayer)
        ]
    return _keras_compat.tracked_layers(layer)


def layer_uses(model: keras.layers.Layer) -> dict[int, int]:
    """How many times each sublayer (by `id`) is used inside `model`."""
    uses: Counter = Counter()
    visited = set()

    def visit(layer):
        if id(layer) in visited:
            return
        visited.add(id(layer))
        children = _children(layer)
        for child in children:
            uses[id(child)] += 1
        for child in {id(c): c for c in children}.values():
            visit(child)

    visit(model)
    return dict(uses)


def tied_layers(model: keras.layers.Layer) -> dict[str, int]:
    """Layers that own variables and are used more than once: name -> uses.

    Example:

    >>> import keras, kerasblocks
    >>> shared = keras.layers.Dense(8, name="shared")
    >>> net = kerasblocks.SequentialBlock(shared, "relu", shared)
    >>> _ = kerasblocks.materialize(net, (None, 8))
    >>> kerasblocks.params.tied_layers(net)
    {'shared': 2}
    """
    require_built(model)
    uses = layer_uses(model)
    result = {}
    for layer in _keras_compat.flatten_layers(model, include_self=False):
        count = uses.get(id(layer), 1)
        if count > 1 and layer.weights:
            result[layer.name] = count
    return result


def _tie_groups(model) -> dict[int, str]:
    """Maps variable id -> tie group label for variables of tied layers."""
    uses = layer_uses(model)
    groups: dict[int, str] = {}
    labels: dict[int, str] = {}
    for layer in _keras_compat.flatten_layers(model, include_self=False):
        count = uses.get(id(layer), 1)
        if count <= 1:
            continue
        for variable in layer.variables:
            if id(variable) in groups:
                continue
            label = labels.setdefault(id(layer), f"tie{len(labels)}")
            groups[id(variable)] = f"{label} (x{count})"
    return groups


@dataclasses.dataclass(frozen=True)
class ParameterRow:
    """One variable of a parameter table."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    device: str
    tie_group: str
    count: int


@dataclasses.dataclass(frozen=True)
class ParameterTable:
    """Rows of a model's variables; `str()` gives an aligned table."""

    rows: tuple[ParameterRow, ...]

    @property
    def total(self) -> int:
        return sum(row.count for row in self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        header = (
            "path",
            "shape",
            "dtype",
            "trainable",
            "device",
            "tie",
            "count",
        )
        body = [
            (
                r.path,
                str(r.shape),
                r.dtype,
                "yes" if r.trainable else "no",
                r.device,
                r.tie_group or "-",
                f"{r.count:,}",
            )
            for r in self.rows
        ]
        widths = [
            max(len(line[i]) for line in [header, *body])
            for i in range(len(header))
        ]

        def fmt(line):
            cells = [
                cell.rjust(w) if i == len(line) - 1 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        rule = "-" * len(fmt(header))
        total = (
            f"total: {self.total:,} parameters in {len(self.rows)} variables"
        )
        return "\n".join([fmt(header), rule, *map(fmt, body), rule, total])


def _device_of(variable) -> str:
    value = getattr(variable, "value", None)
    return str(getattr(value, "device", "") or "")


def parameter_table(model: keras.layers.Layer) -> ParameterTable:
    """A table of every variable: path, shape, dtype, trainable, device,
    tie group and element count.

    Example:

    >>> import kerasblocks
    >>> net = kerasblocks.layers.MLP(name="mlp")
    >>> _ = kerasblocks.materialize(net, (None, 20))
    >>> table = kerasblocks.params.parameter_table(net)
    >>> [(row.path, row.count) for row in table][:2]
    [('mlp/hidden/kernel', 5120), ('mlp/hidden/bias', 256)]
    >>> table.total
    7946
    """
    groups = _tie_groups(model)
    rows = tuple(
        ParameterRow(
            path=v.path,
            shape=tuple(v.shape),
            dtype=str(v.dtype),
            trainable=bool(v.trainable),
            device=_device_of(v),
            tie_group=groups.get(id(v), ""),
            count=math.prod(v.shape),
        )
        for v in unique_variables(model)
    )
    return ParameterTable(rows)


Initializer = str | Mapping | keras.initializers.Initializer | Callable


def _resolve_initializer(spec: Initializer) -> Callable:
    if isinstance(spec, (str, Mapping, keras.initializers.Initializer)):
        return keras.initializers.get(spec)
    if callable(spec):
        return spec
    raise TypeError(
        "An initializer must be a name, a config, an Initializer or a "
        f"callable(shape, dtype). Received: {spec!r}"
    )


def apply_init(
    model: keras.layers.Layer,
    initializers: Mapping[str, Initializer],
    *,
    allow_empty: bool = False,
) -> list[str]:
    """Re-initializes the variables whose paths match each pattern.

    The chapter's `net.apply(init_fn)`, which Keras lacks. Patterns are
    applied in order (a later pattern wins on a variable both match). All
    patterns and initializers are checked before any variable changes.

    Args:
        model: a built model.
        initializers: `{pattern: initializer}`; an initializer is a Keras
            name (`"zeros"`), an `Initializer`, or `callable(shape, dtype)`.
        allow_empty: let a pattern match nothing instead of raising.

    Returns:
        The paths of the variables that were re-initialized, in order.

    Example:

    >>> import numpy as np, keras, kerasblocks
    >>> net = kerasblocks.layers.MLP(name="mlp")
    >>> _ = kerasblocks.materialize(net, (None, 20))
    >>> kerasblocks.params.apply_init(net, {"*bias": "ones"})
    ['mlp/hidden/bias', 'mlp/out/bias']
    >>> float(np.asarray(net.out.bias).min())
    1.0
    """
    if not isinstance(initializers, Mapping):
        raise TypeError(
            "initializers must be a mapping {pattern: initializer}. "
            f"Received: {type(initializers).__name__}"
        )
    plan = [
        (_match(model, pattern, allow_empty), _resolve_initializer(init))
        for pattern, init in initializers.items()
    ]
    changed: dict[str, None] = {}
    for variables, init in plan:
        for variable in variables:
            value = init(tuple(variable.shape), dtype=variable.dtype)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"The initializer for {variable.path} returned shape "
                    f"{tuple(value.shape)}; expected {tuple(variable.shape)}."
                )
            variable.assign(value)
            changed[variable.path] = None
    return list(changed)
