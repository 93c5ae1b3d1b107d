"""Training: run settings and a resumable trainer over `kerasblocks.data`.

The trainer itself (`kerasblocks.training.trainer.train`) is imported on
demand; the zoo announces its models with `register_model_source`. The
data sources live in `kerasblocks.data`; the data names below were public
here before that package existed and stay importable from here.
"""

from kerasblocks.data import DataError as DataError
from kerasblocks.data import Dataset as Dataset
from kerasblocks.data import FolderDataset as FolderDataset
from kerasblocks.data import TFRecordSource as TFRecordSource
from kerasblocks.data import list_datasets as list_datasets
from kerasblocks.data import list_sources as list_sources
from kerasblocks.data import load_dataset as load_dataset
from kerasblocks.data import make_pipeline as make_pipeline
from kerasblocks.data import register_dataset as register_dataset
from kerasblocks.data import register_source as register_source
from kerasblocks.data import write_image_tfrecords as write_image_tfrecords
from kerasblocks.training.config import TrainConfig as TrainConfig
from kerasblocks.training.errors import DiskFullError as DiskFullError
from kerasblocks.training.errors import UserInputError as UserInputError
from kerasblocks.training.inference import Predictor as Predictor
from kerasblocks.training.inference import open_model as open_model
from kerasblocks.training.interrupts import Interrupted as Interrupted
from kerasblocks.training.lock import RunLock as RunLock
from kerasblocks.training.lock import RunLockedError as RunLockedError
from kerasblocks.training.models import ModelSource as ModelSource
from kerasblocks.training.models import (
    model_from_config as model_from_config,
)
from kerasblocks.training.models import (
    register_model_source as register_model_source,
)
from kerasblocks.training.record import RunRecord as RunRecord
