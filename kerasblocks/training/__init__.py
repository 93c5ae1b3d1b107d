"""Training: data sets by name, run settings, a resumable trainer.

The trainer itself (`kerasblocks.training.trainer.train`) is imported on
demand; the zoo announces its models with `register_model_source`.
"""

from kerasblocks.training import builtin_sets as builtin_sets  # noqa: F401
from kerasblocks.training import folders as folders  # noqa: F401
from kerasblocks.training import sequence_data as sequence_data  # noqa: F401
from kerasblocks.training import tfds_source as tfds_source  # noqa: F401
from kerasblocks.training import tfrecords as tfrecords  # noqa: F401
from kerasblocks.training.config import TrainConfig as TrainConfig
from kerasblocks.training.data import DataError as DataError
from kerasblocks.training.data import Dataset as Dataset
from kerasblocks.training.data import list_datasets as list_datasets
from kerasblocks.training.data import list_sources as list_sources
from kerasblocks.training.data import load_dataset as load_dataset
from kerasblocks.training.data import make_pipeline as make_pipeline
from kerasblocks.training.data import register_dataset as register_dataset
from kerasblocks.training.data import register_source as register_source
from kerasblocks.training.errors import UserInputError as UserInputError
from kerasblocks.training.folders import FolderDataset as FolderDataset
from kerasblocks.training.models import ModelSource as ModelSource
from kerasblocks.training.models import (
    model_from_config as model_from_config,
)
from kerasblocks.training.models import (
    register_model_source as register_model_source,
)
from kerasblocks.training.tfrecords import TFRecordSource as TFRecordSource
from kerasblocks.training.tfrecords import (
    write_image_tfrecords as write_image_tfrecords,
)
