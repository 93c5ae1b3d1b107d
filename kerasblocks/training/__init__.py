"""Training: data sets by name, run settings, a resumable trainer."""

from kerasblocks.training import folders as folders  # noqa: F401
from kerasblocks.training import sequence_data as sequence_data  # noqa: F401
from kerasblocks.training import tfds_source as tfds_source  # noqa: F401
from kerasblocks.training import tfrecords as tfrecords  # noqa: F401
from kerasblocks.training.data import DataError as DataError
from kerasblocks.training.data import Dataset as Dataset
from kerasblocks.training.data import list_datasets as list_datasets
from kerasblocks.training.data import list_sources as list_sources
from kerasblocks.training.data import load_dataset as load_dataset
from kerasblocks.training.data import make_pipeline as make_pipeline
from kerasblocks.training.data import register_dataset as register_dataset
from kerasblocks.training.data import register_source as register_source
from kerasblocks.training.folders import FolderDataset as FolderDataset
from kerasblocks.training.tfrecords import TFRecordSource as TFRecordSource
from kerasblocks.training.tfrecords import (
    write_image_tfrecords as write_image_tfrecords,
)
