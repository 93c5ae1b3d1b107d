"""Data: every data source by name and its `tf.data` pipeline.

Built-in sets (`digits`, `mnist`, `fashion_mnist`, `cifar10`,
`synthetic`) and the sequence tasks load by name with `load_dataset`;
users' own files are named by a source form, `KIND:WHERE` (`folder:DIR`,
`tfrecord:GLOB[,GLOB]`, `tfds:NAME`) and are streamed, never held whole.
`make_pipeline` turns a split into batches ordered by (seed, epoch)
alone. Nothing here trains; `kerasblocks.training` builds the run on it.

>>> from kerasblocks import data
>>> digits = data.load_dataset("digits")
>>> digits.num_classes, digits.x_train.shape[1:]
(10, (8, 8, 1))
"""

from kerasblocks import choices as _choices

# Importing the source modules registers their data sets and forms.
from kerasblocks.data import builtin_sets as builtin_sets  # noqa: F401
from kerasblocks.data import folders as folders  # noqa: F401
from kerasblocks.data import sequence_data as sequence_data  # noqa: F401
from kerasblocks.data import tfds_source as tfds_source  # noqa: F401
from kerasblocks.data import tfrecords as tfrecords  # noqa: F401
from kerasblocks.data.dataset import DataError as DataError
from kerasblocks.data.dataset import Dataset as Dataset
from kerasblocks.data.dataset import list_datasets as list_datasets
from kerasblocks.data.dataset import list_sources as list_sources
from kerasblocks.data.dataset import load_dataset as load_dataset
from kerasblocks.data.dataset import make_pipeline as make_pipeline
from kerasblocks.data.dataset import register_dataset as register_dataset
from kerasblocks.data.dataset import register_source as register_source
from kerasblocks.data.folders import FolderDataset as FolderDataset
from kerasblocks.data.tfrecords import TFRecordSource as TFRecordSource
from kerasblocks.data.tfrecords import (
    write_image_tfrecords as write_image_tfrecords,
)

# Every data set and source form that kerasblocks.choices names (the
# tools offer those before this package is imported) has its loader.
_unloaded = sorted(
    {*_choices.DATASETS, *_choices.SOURCES}
    - {*list_datasets(), *list_sources()}
)
if _unloaded:
    raise ImportError(f"No loader is registered for {_unloaded}.")
