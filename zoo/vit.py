"""Vision Transformers (Dosovitskiy et al., 2021, "An image is worth 16x16
words: Transformers for image recognition at scale"), as in the book's
section "Transformers for Vision", with the sizes of the DeiT/timm
"Tiny", "Small" and "Base" models (Touvron et al., 2021).

Position embeddings are learned for one patch grid; `load_weights_resized`
and `resize_position_embedding` move weights to a model of another input
size by interpolating the embeddings over the grid.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

import kerasblocks as kb
from kerasblocks._validation import positive_int
from kerasblocks.layers.regularization import linear_drop_path_rates
from kerasblocks.params import unique_variables
from zoo._image import ImageHead, ImageModel, Stage
from zoo._registry import register_model

# (hidden_dim, num_layers, num_heads, mlp_dim) per variant.
VARIANTS = {
    "tiny": (192, 12, 3, 768),
    "small": (384, 12, 6, 1536),
    "base": (768, 12, 12, 3072),
}
_POOLINGS = (None, "avg", "max", "token")
_EPSILON = 1e-6  # the layer norms of the ViT/DeiT reference weights


def feature_blocks(num_layers: int) -> list[int]:
    """Indices of the blocks whose outputs `features_only` returns: the
    last block of each quarter of the stack."""
    return sorted({max(1, round(num_layers * k / 4)) - 1 for k in (1, 2, 3, 4)})


@kb.register(package="zoo")
class VisionTransformer(ImageModel):
    """ViT: patch tokens, a class token, learned positions, a pre-norm
    Transformer encoder and a linear head on the class token.

    Layers: `patch_embedding` (`PatchEmbedding`: a `patch_size` x
    `patch_size` convolution with stride `patch_size`), `class_token`,
    `position_embedding` (one learned row per token), `embedding_dropout`
    (if `dropout_rate`), `block_0` ... (`TransformerEncoderBlock(
    norm_first=True)`, GELU MLP, attention with biases), `final_norm`,
    then the head: the class token (`class_token_output`) and
    `predictions`. The head has no pre-logits layer (as in DeiT/timm).

    Without the classifier the output is the final (normalized) patch
    tokens on their grid, `(batch, height / patch_size, width /
    patch_size, hidden_dim)` (`patch_grid`), globally pooled with
    `pooling="avg"` or `"max"`; `pooling="token"` gives the class token's
    final features instead. `features_only` returns the (unnormalized)
    outputs of the last block of each quarter of the stack, each put on
    the patch grid (`grid_i`, stride `patch_size`).

    Args:
        patch_size: side of a square patch.
        hidden_dim: token width.
        num_layers: Transformer blocks.
        num_heads: attention heads.
        mlp_dim: hidden width of the blocks' MLPs.
        dropout_rate: dropout after the embeddings, on attention weights
            and in the MLPs.
        drop_path_rate: stochastic depth of the last block; block `k` of
            `n` drops its branch with probability `drop_path_rate * k /
            (n - 1)` in training (timm's rule). 0 adds no layer.
        zero_init_last: zero each block's attention output projection
            and MLP output layer, so that every block starts as the
            identity.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications (plus
            `pooling="token"`, see above).
        features_only: output the grouped block outputs instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("vit_tiny16", input_shape=(32, 32, 3),
    ...                          num_classes=10)
    >>> table = model.get_layer("position_embedding").embeddings
    >>> model.output_shape, tuple(table.shape)
    ((None, 10), (5, 192))
    """

    top_pooling = "token"  # the classifier reads the class token

    def __init__(
        self,
        *,
        patch_size: int = 16,
        hidden_dim: int = VARIANTS["tiny"][0],
        num_layers: int = VARIANTS["tiny"][1],
        num_heads: int = VARIANTS["tiny"][2],
        mlp_dim: int = VARIANTS["tiny"][3],
        dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "vit",
        **kwargs,
    ):
        for key, value in (
            ("patch_size", patch_size),
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("mlp_dim", mlp_dim),
        ):
            positive_int(key, value)
        if pooling not in _POOLINGS:
            raise ValueError(
                f"VisionTransformer: pooling must be one of {_POOLINGS}. "
                f"Received: pooling={pooling!r}"
            )
        head = ImageHead(
            "VisionTransformer",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=None if pooling == "token" else pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=patch_size,
        )
        grid = _patch_grid(head.input_shape, patch_size)
        inputs = head.inputs()
        x = _embed(inputs, grid, patch_size, hidden_dim, dropout_rate)
        x, stages = _encoder(
            x,
            grid,
            patch_size,
            features_only,
            linear_drop_path_rates(drop_path_rate, num_layers),
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            mlp_dim=mlp_dim,
            dropout_rate=dropout_rate,
            zero_init_last=zero_init_last,
        )
        tokens = keras.layers.LayerNormalization(
            epsilon=_EPSILON, name="final_norm"
        )(x)
        if pooling == "token" and not include_top and not features_only:
            outputs = kb.layers.SelectToken(0, name="token_pool")(tokens)
        else:
            if not features_only:
                tensor = kb.layers.PatchGrid(*grid, name="patch_grid")(tokens)
                stages = [Stage("patch_grid", tensor, patch_size)]

            def top(_):
                return kb.layers.SelectToken(0, name="class_token_output")(
                    tokens
                )

            outputs = head.outputs(stages, top)
        self._finish(head, inputs, outputs, name, kwargs)


def _patch_grid(input_shape, patch_size) -> tuple[int, int]:
    """(rows, columns) of patches of a `(height, width, channels)`
    image; the position embedding needs them static."""
    height, width = input_shape[:2]
    if height is None or width is None:
        raise ValueError(
            "VisionTransformer: the position embedding needs a static "
            f"height and width. Received: input_shape={input_shape}"
        )
    return (height // patch_size, width // patch_size)


def _embed(inputs, grid, patch_size, hidden_dim, dropout_rate):
    """Patch tokens, the class token and the learned positions."""
    x = kb.layers.PatchEmbedding(
        patch_size, hidden_dim, name="patch_embedding"
    )(inputs)
    x = kb.layers.ClassToken(name="class_token")(x)
    x = kb.layers.LearnedPositionEmbedding(
        grid[0] * grid[1] + 1, name="position_embedding"
    )(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="embedding_dropout")(x)
    return x


def _encoder(
    x, grid, patch_size, features_only, drop_path_rates, **block_options
):
    """The pre-norm Transformer blocks on the tokens `x`, one per rate
    of `drop_path_rates` (`block_options`: the blocks' sizes); returns
    their output and, with `features_only`, the stages `feature_blocks`
    picks, on the patch grid."""
    num_layers = len(drop_path_rates)
    ends = feature_blocks(num_layers)
    stages = []
    for index in range(num_layers):
        x = kb.layers.TransformerEncoderBlock(
            **block_options,
            norm_first=True,
            activation="gelu",
            use_bias=True,
            epsilon=_EPSILON,
            drop_path_rate=drop_path_rates[index],
            name=f"block_{index}",
        )(x)
        if features_only and index in ends:
            tensor = kb.layers.PatchGrid(*grid, name=f"grid_{index}")(x)
            stages.append(Stage(f"block_{index}", tensor, patch_size))
    return x, stages


def resize_position_embedding(
    embeddings,
    source_grid: tuple[int, int],
    target_grid: tuple[int, int],
    *,
    num_prefix_tokens: int = 1,
    method: str = "bicubic",
) -> np.ndarray:
    """Interpolates a position-embedding table to another patch grid.

    The first `num_prefix_tokens` rows (the class token's) are copied
    unchanged; the others, laid out row-major on `source_grid`, are
    resized to `target_grid` with `tf.image.resize(method=...)`.

    Args:
        embeddings: `(prefix + h * w, d)` table.
        source_grid, target_grid: `(h, w)` patch grids.
        num_prefix_tokens: rows that are not patches.
        method: a `tf.image.resize` method (ViT uses bicubic).

    Returns:
        The `(prefix + h' * w', d)` table.

    Example:

    >>> import numpy as np
    >>> from zoo.vit import resize_position_embedding
    >>> table = np.arange(10.0).reshape(5, 2)
    >>> resize_position_embedding(table, (2, 2), (3, 3)).shape
    (10, 2)
    """
    table = np.asarray(embeddings)
    expected = num_prefix_tokens + source_grid[0] * source_grid[1]
    if table.ndim != 2 or table.shape[0] != expected:
        raise ValueError(
            f"embeddings must have {expected} rows ({num_prefix_tokens} + "
            f"{source_grid[0]}x{source_grid[1]}). Received: shape={table.shape}"
        )
    prefix, patches = table[:num_prefix_tokens], table[num_prefix_tokens:]
    if tuple(source_grid) == tuple(target_grid):
        return table.copy()
    grid = patches.reshape(*source_grid, table.shape[1])
    resized = tf.image.resize(
        grid[None].astype(np.float32), target_grid, method=method
    )[0].numpy()
    return np.concatenate(
        [prefix, resized.reshape(-1, table.shape[1]).astype(table.dtype)]
    )


def _grid(model) -> tuple[int, int]:
    config = model.get_config()
    size = config["patch_size"]
    height, width = config["input_shape"][:2]
    return height // size, width // size


def load_weights_resized(model: keras.Model, source_model: keras.Model) -> None:
    """Copies every weight of `source_model` into `model`, two
    VisionTransformers that differ at most in `input_shape`; the position
    embeddings are interpolated to `model`'s patch grid (the class
    token's row is copied unchanged).

    Raises:
        ValueError: not two VisionTransformers, or another weight differs
            in shape (the message names it).

    Example:

    >>> import zoo
    >>> from zoo.vit import load_weights_resized
    >>> args = dict(num_layers=1, num_classes=3)
    >>> big = zoo.create_model("vit_tiny16", input_shape=(48, 48, 3), **args)
    >>> small = zoo.create_model("vit_tiny16", input_shape=(32, 32, 3), **args)
    >>> load_weights_resized(small, big)
    """
    for what, value in (("model", model), ("source_model", source_model)):
        if not isinstance(value, VisionTransformer):
            raise ValueError(
                f"{what} must be a zoo VisionTransformer. Received: "
                f"{type(value).__name__}"
            )
    targets, sources = unique_variables(model), unique_variables(source_model)
    if len(targets) != len(sources):
        raise ValueError(
            f"The models differ: {len(sources)} source weights, "
            f"{len(targets)} target weights."
        )
    values = []
    for target, source in zip(targets, sources, strict=True):
        value = source.numpy()
        if target.path.endswith("position_embedding/embeddings"):
            value = resize_position_embedding(
                value, _grid(source_model), _grid(model)
            )
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"Weight {target.path} has shape {tuple(target.shape)}; the "
                f"source's {source.path} has {tuple(source.shape)}."
            )
        values.append(value)
    for target, value in zip(targets, values, strict=True):
        target.assign(value)


def _vit(variant, name, overrides):
    hidden_dim, num_layers, num_heads, mlp_dim = VARIANTS[variant]
    return VisionTransformer(
        **{
            "hidden_dim": hidden_dim,
            "num_layers": num_layers,
            "num_heads": num_heads,
            "mlp_dim": mlp_dim,
            "name": name,
            **overrides,
        }
    )


_TEST = {"input_shape": (32, 32, 3), "num_classes": 10, "num_layers": 2}


@register_model(test_overrides=_TEST)
def vit_tiny16(**overrides) -> VisionTransformer:
    """ViT-Ti/16 (5.7M parameters at 224x224, 1000 classes)."""
    return _vit("tiny", "vit_tiny16", overrides)


@register_model(test_overrides=_TEST, test_covered_by="vit_tiny16")
def vit_small16(**overrides) -> VisionTransformer:
    """ViT-S/16 (22.1M parameters at 224x224, 1000 classes)."""
    return _vit("small", "vit_small16", overrides)


@register_model(test_overrides=_TEST, test_covered_by="vit_tiny16")
def vit_base16(**overrides) -> VisionTransformer:
    """ViT-B/16 (86.6M parameters at 224x224, 1000 classes)."""
    return _vit("base", "vit_base16", overrides)
