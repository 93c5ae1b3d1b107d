"""File I/O: tensors, weights, whole models, SavedModel exports and the
deployment formats (LiteRT, ONNX); atomic, safe to load, checksummed."""

from kerasblocks.io.errors import ConversionError as ConversionError
from kerasblocks.io.errors import CorruptFileError as CorruptFileError
from kerasblocks.io.errors import ResourceLimitError as ResourceLimitError
from kerasblocks.io.errors import UnsafeModelError as UnsafeModelError
from kerasblocks.io.errors import WeightsMismatchError as WeightsMismatchError
from kerasblocks.io.image_metadata import ImageMetadata as ImageMetadata
from kerasblocks.io.image_metadata import (
    read_image_metadata as read_image_metadata,
)
from kerasblocks.io.image_metadata import (
    write_image_metadata as write_image_metadata,
)
from kerasblocks.io.image_serving import ImageServing as ImageServing
from kerasblocks.io.limits import Limits as Limits
from kerasblocks.io.litert import export_litert as export_litert
from kerasblocks.io.litert import run_litert as run_litert
from kerasblocks.io.models import load_model as load_model
from kerasblocks.io.models import save_model as save_model
from kerasblocks.io.onnx_format import export_onnx as export_onnx
from kerasblocks.io.onnx_format import run_onnx as run_onnx
from kerasblocks.io.report import LoadReport as LoadReport
from kerasblocks.io.safety import (
    register_trusted_package as register_trusted_package,
)
from kerasblocks.io.safety import trusted_packages as trusted_packages
from kerasblocks.io.saved_model import check_saved_model as check_saved_model
from kerasblocks.io.saved_model import (
    export_saved_model as export_saved_model,
)
from kerasblocks.io.serving import ServingValidator as ServingValidator
from kerasblocks.io.serving import serving_validator as serving_validator
from kerasblocks.io.tensors import load_tensors as load_tensors
from kerasblocks.io.tensors import save_tensors as save_tensors
from kerasblocks.io.tflite import export_tflite as export_tflite
from kerasblocks.io.tflite import run_tflite as run_tflite
from kerasblocks.io.weights import load_weights as load_weights
from kerasblocks.io.weights import save_weights as save_weights
