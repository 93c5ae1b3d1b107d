"""Image preprocessing carried inside a model.

Pretrained ImageNet weights expect the pixels their authors fed them:
keras.applications' `preprocess_input` has three conventions, and a
model that carries its own preprocessing takes raw RGB pixels in the
0-255 range, so training, evaluation and serving all see one function.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register

# keras.applications.imagenet_utils' constants.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
MODES = ("caffe", "tf", "torch", "none", "mean_std")


@register()
class ImagePreprocessing(CapturedConfig, keras.layers.Layer):
    """Maps RGB pixels in [0, 255] to what a set of weights expects.

    Modes (keras.applications' `preprocess_input` conventions):

    - `"caffe"`: RGB to BGR, then the ImageNet mean (BGR) subtracted,
      no scaling (ResNet v1, VGG);
    - `"tf"`: scaled to [-1, 1] (ResNet v2, MobileNet, Inception,
      Xception, NASNet);
    - `"torch"`: scaled to [0, 1], then normalized by the ImageNet
      mean and standard deviation (DenseNet);
    - `"mean_std"`: `(x / 255 - mean) / std` with the given `mean` and
      `std`;
    - `"none"`: the pixels unchanged, as float (families that normalize
      inside, like EfficientNet and ConvNeXt).

    Args:
        mode: one of the modes above.
        mean: per-channel mean of the `"mean_std"` mode, in [0, 1].
        std: per-channel standard deviation of the `"mean_std"` mode.

    Example:

    >>> import numpy as np
    >>> layer = ImagePreprocessing("tf")
    >>> layer(np.array([[[[0, 127.5, 255]]]])).numpy().tolist()
    [[[[-1.0, 0.0, 1.0]]]]
    >>> caffe = ImagePreprocessing("caffe")
    >>> out = caffe(np.full((1, 1, 1, 3), 100.0)).numpy()
    >>> [round(float(v), 2) for v in out.ravel()]  # BGR minus the mean
    [-3.94, -16.78, -23.68]
    """

    def __init__(
        self,
        mode: str = "none",
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"mode must be one of {MODES}. Received: mode={mode!r}"
            )
        if (mode == "mean_std") != (mean is not None and std is not None):
            raise ValueError(
                "mean and std are given with mode='mean_std' and only "
                f"then. Received: {mode=}, {mean=}, {std=}"
            )
        if mode == "mean_std":
            if len(mean) != len(std) or any(s <= 0 for s in std):
                raise ValueError(
                    "mean and std need one entry per channel and a "
                    f"positive std. Received: {mean=}, {std=}"
                )
        self.mode = mode
        self.mean = None if mean is None else [float(m) for m in mean]
        self.std = None if std is None else [float(s) for s in std]
        scale, offset = self._affine()
        self._scale, self._offset = scale, offset

    def _affine(self) -> tuple[list[float], list[float]]:
        """Per-channel (scale, offset): output = input * scale - offset,
        after the channel flip of the caffe mode."""
        if self.mode == "caffe":
            return [1.0, 1.0, 1.0], list(_CAFFE_MEAN_BGR)
        if self.mode == "tf":
            return [1 / 127.5] * 3, [1.0] * 3
        if self.mode in ("torch", "mean_std"):
            mean = _TORCH_MEAN if self.mode == "torch" else self.mean
            std = _TORCH_STD if self.mode == "torch" else self.std
            return (
                [1 / (255.0 * s) for s in std],
                [m / s for m, s in zip(mean, std, strict=True)],
            )
        return [1.0], [0.0]

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.mode in ("caffe", "tf", "torch") and channels != 3:
            raise ValueError(
                f"ImagePreprocessing(mode={self.mode!r}) takes RGB images "
                f"(3 channels). Received input_shape={tuple(input_shape)}"
            )
        if self.mode == "mean_std" and channels != len(self._scale):
            raise ValueError(
                f"mean/std have {len(self._scale)} entries but the images "
                f"have {channels} channels."
            )
        super().build(input_shape)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1)
        if self.mode == "none":
            return x
        scale = ops.convert_to_tensor(self._scale, self.compute_dtype)
        offset = ops.convert_to_tensor(self._offset, self.compute_dtype)
        return x * scale - offset

    def compute_output_shape(self, input_shape):
        return input_shape
