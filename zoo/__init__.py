"""zoo: reference architectures by name.

>>> import zoo
>>> model = zoo.create_model("lenet", input_shape=(32, 32, 1), num_classes=5)
>>> model.output_shape
(None, 5)
"""

from zoo import alexnet as alexnet  # noqa: F401  (registers the models)
from zoo import convnext as convnext  # noqa: F401
from zoo import densenet as densenet  # noqa: F401
from zoo import efficientnet as efficientnet  # noqa: F401
from zoo import efficientnetv2 as efficientnetv2  # noqa: F401
from zoo import finetune as finetune  # noqa: F401
from zoo import googlenet as googlenet  # noqa: F401
from zoo import inception_resnet_v2 as inception_resnet_v2  # noqa: F401
from zoo import inception_v3 as inception_v3  # noqa: F401
from zoo import lenet as lenet  # noqa: F401
from zoo import mobilenet as mobilenet  # noqa: F401
from zoo import mobilenetv3 as mobilenetv3  # noqa: F401
from zoo import nasnet as nasnet  # noqa: F401
from zoo import nin as nin  # noqa: F401
from zoo import pretrained as pretrained  # noqa: F401
from zoo import regnet as regnet  # noqa: F401
from zoo import resnet as resnet  # noqa: F401
from zoo import rnn as rnn  # noqa: F401
from zoo import seq2seq as seq2seq  # noqa: F401
from zoo import transformer as transformer  # noqa: F401
from zoo import vgg as vgg  # noqa: F401
from zoo import vit as vit  # noqa: F401
from zoo import xception as xception  # noqa: F401
from zoo._image import FeatureInfo as FeatureInfo
from zoo._image import ImageHead as ImageHead
from zoo._image import ImageModel as ImageModel
from zoo._porting import from_keras_applications as from_keras_applications
from zoo._registry import ModelEntry as ModelEntry
from zoo._registry import create_model as create_model
from zoo._registry import get_model_entry as get_model_entry
from zoo._registry import list_models as list_models
from zoo._registry import register_model as register_model
from zoo._table import model_table as model_table
from zoo.generate import generate as generate


def _register_with_the_trainer() -> None:
    """The trainer in kerasblocks builds models by name through the zoo;
    the library never imports the zoo, so the zoo announces itself."""
    import logging

    from kerasblocks.training.models import ModelSource, register_model_source

    def create(name, **arguments):
        # The trainer prints the load report as its own line.
        logger = logging.getLogger("zoo")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            return create_model(name, **arguments)
        finally:
            logger.setLevel(level)

    def cfg_of(name):
        cfg = pretrained.pretrained_cfg(name)
        return None if cfg is None else cfg.to_dict()

    register_model_source(
        ModelSource(
            create=create,
            task_of=lambda name: get_model_entry(name).task,
            pretrained_cfg=cfg_of,
            freeze=pretrained.freeze,
        )
    )


_register_with_the_trainer()
