"""The run record: what a run's `model_config.json` says about its model.

A run writes its record once, when it starts, and everything that reads
a run back (resuming from it, `--init_from` of another run, evaluation,
export, prediction) reads it once into a `RunRecord` and passes that on.
Records of earlier releases lack keys that came later; `from_dict` is
the one place that fills them in.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from kerasblocks.training.errors import UserInputError

FILE = "model_config.json"


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A run's model: its name and Keras config, and how it sees data.

    Attributes:
        model: the model's name (`--model`).
        config: the model's serialized Keras config (what rebuilds it).
        mixed_precision: `--mixed_precision` ("none", "float16", ...).
        image_size: `--image_size` as (height, width), or None for the
            model's own.
        init_from: where the first weights came from (`--init_from`).
        class_names: the data set's class names, or None.
        pixels: "raw" (0-255; the model preprocesses) or "unit" ([0, 1]).
        pretrained_cfg: what the pretrained weights expect (input size,
            interpolation, crop fraction, ...), or None.

    Example:

    >>> record = RunRecord.from_dict({"model": "lenet", "config": {}})
    >>> record.pixels, record.eval_view
    ('unit', {'crop_fraction': 1.0, 'interpolation': 'bilinear'})
    >>> RunRecord.from_json(record.to_json()) == record
    True
    """

    model: str
    config: dict[str, Any]
    mixed_precision: str = "none"
    image_size: tuple[int, int] | None = None
    init_from: str | None = None
    class_names: tuple[str, ...] | None = None
    pixels: str = "unit"
    pretrained_cfg: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunRecord:
        """A record from `model_config.json`'s mapping; a key that an
        earlier release did not write takes its default here."""
        if not isinstance(values, dict) or not isinstance(
            values.get("config"), dict
        ):
            raise ValueError("no model config in it")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        for key in ("image_size", "class_names"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        for key in ("pixels", "mixed_precision"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for key in ("image_size", "class_names"):
            if values[key] is not None:
                values[key] = list(values[key])
        return values

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def read(cls, run_dir: str) -> RunRecord:
        """The record of the run in `run_dir`.

        Raises:
            UserInputError: no readable model_config.json there.
        """
        path = os.path.join(run_dir, FILE)
        try:
            with open(path) as f:
                return cls.from_json(f.read())
        except FileNotFoundError:
            raise UserInputError(
                f"{run_dir}: not a run directory (no {FILE}); give "
                "--run_dir of a kb-train run."
            ) from None
        except (ValueError, KeyError, TypeError) as error:
            raise UserInputError(f"{path} is unreadable ({error!r}).") from None

    @property
    def eval_view(self) -> dict[str, Any]:
        """How the model sees images when evaluated and served: the
        central crop and resize method of its pretrained configuration
        (the whole image, bilinear, for a model trained from scratch).
        `make_pipeline` and `ImageServing` take these keywords."""
        cfg = self.pretrained_cfg or {}
        return {
            "crop_fraction": float(cfg.get("crop_fraction", 1.0)),
            "interpolation": cfg.get("interpolation", "bilinear"),
        }

    def build_model(self, where: str = FILE):
        """The model of this record, with new weights.

        Nothing in the record runs code: classes outside Keras and the
        registered ones are refused (`UnsafeModelError`, naming `where`).
        The package that registered the model's classes (the zoo) must
        be imported; the tools do that.
        """
        import keras

        from kerasblocks.io import safety
        from kerasblocks.io.errors import UnsafeModelError

        problems = safety.config_problems(self.config)
        if problems:
            raise UnsafeModelError(where, problems)
        return keras.saving.deserialize_keras_object(self.config)
