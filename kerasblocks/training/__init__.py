"""Training: run settings and a resumable trainer over `kerasblocks.data`.

The trainer itself (`kerasblocks.training.trainer.train`) is imported on
demand; the zoo announces its models with `register_model_source`. The
data sources live in `kerasblocks.data`; the data names below were public
here before that package existed and stay importable from here.

The names below load on first use, so `kerasblocks.training.config` and
`kerasblocks.training.errors` (plain Python) import no TensorFlow: a
tool validates its flags with `TrainConfig.validate` before TensorFlow
loads.
"""

# ruff: noqa: F401  (_load reads its imports back through locals())

from kerasblocks import _lazy

__all__ = [
    "DataError",
    "Dataset",
    "DiskFullError",
    "FolderDataset",
    "Interrupted",
    "ModelSource",
    "Predictor",
    "RunLock",
    "RunLockedError",
    "RunRecord",
    "TFRecordSource",
    "TrainConfig",
    "UserInputError",
    "list_datasets",
    "list_sources",
    "load_dataset",
    "make_pipeline",
    "model_from_config",
    "open_model",
    "register_dataset",
    "register_model_source",
    "register_source",
    "write_image_tfrecords",
]


def _load() -> dict[str, object]:
    """Imports the public names."""
    from kerasblocks.data import (
        DataError,
        Dataset,
        FolderDataset,
        TFRecordSource,
        list_datasets,
        list_sources,
        load_dataset,
        make_pipeline,
        register_dataset,
        register_source,
        write_image_tfrecords,
    )
    from kerasblocks.training.config import TrainConfig
    from kerasblocks.training.errors import DiskFullError, UserInputError
    from kerasblocks.training.inference import Predictor, open_model
    from kerasblocks.training.interrupts import Interrupted
    from kerasblocks.training.lock import RunLock, RunLockedError
    from kerasblocks.training.models import (
        ModelSource,
        model_from_config,
        register_model_source,
    )
    from kerasblocks.training.record import RunRecord

    return locals()


__getattr__, __dir__ = _lazy.attach(__name__, __all__, _load)
