"""keras.applications' ImageNet weights files: names, URLs and hashes.

The facts are Keras's (keras/src/applications/*.py of the pinned Keras):
the same file names in the cache, the same URLs, the same md5 or SHA-256
hashes, chosen by the same rules (include_top, and for the MobileNets
alpha, input size and minimalism). tests/zoo/test_downloads.py checks
the table against the installed Keras. Keras publishes no hash for
MobileNet and MobileNetV2; their `file_hash` is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import keras

_GCS = "https://storage.googleapis.com/"
_APPS = _GCS + "tensorflow/keras-applications/"


class WeightsFile(NamedTuple):
    """One weights file: its name in the cache, its URL, its hash (md5
    or SHA-256 hex, as Keras gives it; None where Keras gives none)."""

    fname: str
    origin: str
    file_hash: str | None


def _pair(directory, top, notop, hashes, urls=None):
    """{include_top: WeightsFile} for a file with and one without top."""
    top_url, notop_url = urls or (top, notop)
    return {
        True: WeightsFile(top, directory + top_url, hashes[0]),
        False: WeightsFile(notop, directory + notop_url, hashes[1]),
    }


def _kernels(directory, stem, hashes):
    """Keras's oldest naming, `<stem>_weights_tf_dim_ordering_..`."""
    name = f"{stem}_weights_tf_dim_ordering_tf_kernels"
    return _pair(_APPS + directory, f"{name}.h5", f"{name}_notop.h5", hashes)


_RESNET = {
    "ResNet50": (
        "2cb95161c43110f7111970584f804107",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "ResNet101": (
        "f1aeb4b969a6efcfb50fad2f0c20cfc5",
        "88cf7a10940856eca736dc7b7e228a21",
    ),
    "ResNet152": (
        "100835be76be38e30d865e96f2aaae62",
        "ee4c566cf9a93f14d82f913c2dc6dd0c",
    ),
    "ResNet50V2": (
        "3ef43a0b657b3be2300d5770ece849e0",
        "fac2f116257151a9d068a22e544a4917",
    ),
    "ResNet101V2": (
        "6343647c601c52e1368623803854d971",
        "c0ed64b8031c3730f411d2eb4eea35b5",
    ),
    "ResNet152V2": (
        "a49b44d1979771252814e80f8ec446f9",
        "ed17cf2e0169df9d443503ef94b23b33",
    ),
}
_DENSENET = {
    "DenseNet121": (
        "9d60b8095a5708f2dcce2bca79d332c7",
        "30ee3e1110167f948a6b9946edeeb738",
    ),
    "DenseNet169": (
        "d699b8f76981ab1b30698df4c175e90b",
        "b8c4d4c20dd625c148057b9ff1c1176b",
    ),
    "DenseNet201": (
        "1ceb130c1ea1b78c3bf6114dbdfd8807",
        "c13680b51ded0fb44dff2d8f86ac8bb1",
    ),
}
_CONVNEXT = {
    "Tiny": (
        "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
        "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
    ),
    "Small": (
        "ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
        "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab",
    ),
    "Base": (
        "52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
        "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45",
    ),
    "Large": (
        "070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
        "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd",
    ),
    "XLarge": (
        "c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
        "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05",
    ),
}
_EFFICIENTNET = {
    "B0": (
        "902e53a9f72be733fc0bcb005b3ebbac",
        "50bc09e76180e00e4465e1a485ddc09d",
    ),
    "B1": (
        "1d254153d4ab51201f1646940f018540",
        "74c4e6b3e1f6a1eea24c589628592432",
    ),
    "B2": (
        "b15cce36ff4dcbd00b6dd88e7857a6ad",
        "111f8e2ac8aa800a7a99e3239f7bfb39",
    ),
    "B3": (
        "ffd1fdc53d0ce67064dc6a9c7960ede0",
        "af6d107764bb5b1abb91932881670226",
    ),
    "B4": (
        "18c95ad55216b8f92d7e70b3a046e2fc",
        "ebc24e6d6c33eaebbd558eafbeedf1ba",
    ),
    "B5": (
        "ace28f2a6363774853a83a0b21b9421a",
        "38879255a25d3c92d5e44e04ae6cec6f",
    ),
    "B6": (
        "165f6e37dce68623721b423839de8be5",
        "9ecce42647a20130c1f39a5d4cb75743",
    ),
    "B7": (
        "8c03f828fec3ef71311cd463b6759d99",
        "cbcfe4450ddf6f3ad90b1b398090fe4a",
    ),
}
_EFFICIENTNET_V2 = {
    "B0": (
        "21ecbf6da12460d5c40bb2f29ceb2188",
        "893217f2bb855e2983157299931e43ff",
    ),
    "B1": (
        "069f0534ff22adf035c89e2d9547a9dc",
        "0e80663031ca32d657f9caa404b6ec37",
    ),
    "B2": (
        "424e49f28180edbde1e94797771950a7",
        "1dfe2e7a5d45b6632553a8961ea609eb",
    ),
    "B3": (
        "1f1fc43bd98a6e4fd8fdfd551e02c7a0",
        "f6abf7b5849ac99a89b50dd3fd532856",
    ),
    "S": (
        "e1d88a8495beba45748fedd0cecbe016",
        "af0682fb74e8c54910f2d4393339c070",
    ),
    "M": (
        "a3bf6aa3276309f4fc6a34aa114c95cd",
        "1b8dc055df72dde80d614482840fe342",
    ),
    "L": (
        "27e6d408b53c7ebc868fefa357689935",
        "b0b66b5c863aef5b46e8608fe1711615",
    ),
}
# Keyed as Keras keys them: "<type>[_minimalistic]_224_<alpha>_float".
MOBILENET_V3 = {
    "large_224_0.75_float": (
        "765b44a33ad4005b3ac83185abf1d0eb",
        "40af19a13ebea4e2ee0c676887f69a2e",
    ),
    "large_224_1.0_float": (
        "59e551e166be033d707958cf9e29a6a7",
        "07fb09a5933dd0c8eaafa16978110389",
    ),
    "large_minimalistic_224_1.0_float": (
        "675e7b876c45c57e9e63e6d90a36599c",
        "ec5221f64a2f6d1ef965a614bdae7973",
    ),
    "small_224_0.75_float": (
        "cb65d4e5be93758266aa0a7f2c6708b7",
        "ebdb5cc8e0b497cd13a7c275d475c819",
    ),
    "small_224_1.0_float": (
        "8768d4c2e7dee89b9d02b2d03d65d862",
        "d3e8ec802a04aa4fc771ee12a9a9b836",
    ),
    "small_minimalistic_224_1.0_float": (
        "99cd97fb2fcdad2bf028eb838de69e37",
        "cde8136e733e811080d9fcd8a252f7e4",
    ),
}

# Files that do not depend on the model's arguments beyond include_top.
FIXED: dict[str, dict[bool, WeightsFile]] = {
    **{app: _kernels("resnet/", app.lower(), h) for app, h in _RESNET.items()},
    **{
        app: _kernels("densenet/", app.lower(), h)
        for app, h in _DENSENET.items()
    },
    "VGG16": _kernels(
        "vgg16/",
        "vgg16",
        (
            "64373286793e3c8b2b4e3219cbf3544b",
            "6d6bbae143d832006294945121d1f1fc",
        ),
    ),
    "VGG19": _kernels(
        "vgg19/",
        "vgg19",
        (
            "cbe5617147190e668d6c5d5026f83318",
            "253f8cb515780f3b799900260a226db6",
        ),
    ),
    "Xception": _kernels(
        "xception/",
        "xception",
        (
            "0a58e3b7378bc2990ea3b43d5981f1f6",
            "b0042744bf5b25fce3cb969f33bebb97",
        ),
    ),
    "InceptionV3": _kernels(
        "inception_v3/",
        "inception_v3",
        (
            "9a0d58056eeedaa3f26cb7ebd46da564",
            "bcbd6486424b2319ff4ef7d526e38f63",
        ),
    ),
    "InceptionResNetV2": _kernels(
        "inception_resnet_v2/",
        "inception_resnet_v2",
        (
            "e693bd0210a403b3192acc6073ad2e96",
            "d19885ff4a710c122648d3b5c3b684e4",
        ),
    ),
    # Keras names NASNet's files in the cache unlike its URLs.
    "NASNetMobile": _pair(
        _APPS + "nasnet/",
        "nasnet_mobile.h5",
        "nasnet_mobile_no_top.h5",
        (
            "020fb642bf7360b370c678b08e0adf61",
            "1ed92395b5b598bdda52abe5c0dbfd63",
        ),
        ("NASNet-mobile.h5", "NASNet-mobile-no-top.h5"),
    ),
    "NASNetLarge": _pair(
        _APPS + "nasnet/",
        "nasnet_large.h5",
        "nasnet_large_no_top.h5",
        (
            "11577c9a518f0070763c2b964a382f17",
            "d81d89dc07e6e56530c4e77faddd61b5",
        ),
        ("NASNet-large.h5", "NASNet-large-no-top.h5"),
    ),
    **{
        f"ConvNeXt{size}": _pair(
            _APPS + "convnext/",
            f"convnext_{size.lower()}.h5",
            f"convnext_{size.lower()}_notop.h5",
            h,
        )
        for size, h in _CONVNEXT.items()
    },
    **{
        f"EfficientNet{b}": _pair(
            _GCS + "keras-applications/",
            f"efficientnet{b.lower()}.h5",
            f"efficientnet{b.lower()}_notop.h5",
            h,
        )
        for b, h in _EFFICIENTNET.items()
    },
    **{
        f"EfficientNetV2{b}": _pair(
            _APPS + "efficientnet_v2/",
            f"efficientnetv2-{b.lower()}.h5",
            f"efficientnetv2-{b.lower()}_notop.h5",
            h,
        )
        for b, h in _EFFICIENTNET_V2.items()
    },
}

# Alphas and square input sizes keras.applications has files for.
MOBILENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
MOBILENET_SIZES = (128, 160, 192, 224)
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


def _rows(keras_args: Mapping[str, Any], sizes) -> int:
    """The input size whose file Keras picks: the input's when square
    and one of `sizes`, else 224 (Keras's rule)."""
    shape = keras_args.get("input_shape")
    if shape is None:
        return 224
    if keras.config.image_data_format() == "channels_first":
        rows, cols = shape[1], shape[2]
    else:
        rows, cols = shape[0], shape[1]
    return rows if rows == cols and rows in sizes else 224


def _mobilenet(keras_args, top: bool) -> WeightsFile:
    alpha = keras_args.get("alpha", 1.0)
    if keras_args.get("depth_multiplier", 1) != 1:
        raise ValueError(
            "MobileNet's ImageNet weights have depth_multiplier 1. "
            f"Received: depth_multiplier={keras_args['depth_multiplier']}"
        )
    if alpha not in MOBILENET_ALPHAS:
        raise ValueError(
            f"MobileNet has ImageNet weights for alpha in {MOBILENET_ALPHAS}. "
            f"Received: alpha={alpha}"
        )
    text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[alpha]
    rows = _rows(keras_args, MOBILENET_SIZES)
    name = f"mobilenet_{text}_{rows}_tf{'' if top else '_no_top'}.h5"
    return WeightsFile(name, _APPS + "mobilenet/" + name, None)


def _mobilenet_v2(keras_args, top: bool) -> WeightsFile:
    alpha = keras_args.get("alpha", 1.0)
    if alpha not in MOBILENET_V2_ALPHAS:
        raise ValueError(
            "MobileNetV2 has ImageNet weights for alpha in "
            f"{MOBILENET_V2_ALPHAS}. Received: alpha={alpha}"
        )
    rows = _rows(keras_args, MOBILENET_V2_SIZES)
    name = (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
        f"{float(alpha)}_{rows}{'' if top else '_no_top'}.h5"
    )
    return WeightsFile(name, _APPS + "mobilenet_v2/" + name, None)


def _mobilenet_v3(kind: str, keras_args, top: bool) -> WeightsFile:
    alpha = keras_args.get("alpha", 1.0)
    minimalistic = keras_args.get("minimalistic", False)
    key = f"{kind}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    if key not in MOBILENET_V3:
        raise ValueError(
            f"MobileNetV3 has ImageNet weights for alpha 0.75 and 1.0 "
            "(1.0 only when minimalistic). Received: "
            f"alpha={alpha}, minimalistic={minimalistic}"
        )
    name = f"weights_mobilenet_v3_{key}{'' if top else '_no_top_v2'}.h5"
    return WeightsFile(
        name,
        _APPS + "mobilenet_v3/" + name,
        MOBILENET_V3[key][0 if top else 1],
    )


def imagenet_file(
    keras_application: str, keras_args: Mapping[str, Any]
) -> WeightsFile:
    """The ImageNet weights file `keras.applications.<keras_application>(
    weights="imagenet", **keras_args)` loads.

    Raises:
        ValueError: keras.applications has no ImageNet file for these
            arguments (the message says which it has).

    Example:

    >>> imagenet_file("VGG16", {"include_top": False}).fname
    'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
    >>> imagenet_file("MobileNet", {"alpha": 0.5, "input_shape": (128,
    ...     128, 3), "include_top": False}).fname
    'mobilenet_5_0_128_tf_no_top.h5'
    """
    top = bool(keras_args.get("include_top", True))
    if keras_application in FIXED:
        return FIXED[keras_application][top]
    if keras_application == "MobileNet":
        return _mobilenet(keras_args, top)
    if keras_application == "MobileNetV2":
        return _mobilenet_v2(keras_args, top)
    if keras_application in ("MobileNetV3Small", "MobileNetV3Large"):
        kind = keras_application.removeprefix("MobileNetV3").lower()
        return _mobilenet_v3(kind, keras_args, top)
    raise ValueError(
        f"keras.applications.{keras_application} has no "
        "ImageNet weights file the zoo knows."
    )


def weights_summary(keras_application: str, input_size) -> str:
    """One cell of the README's model table: which ImageNet files
    keras.applications has for a model (with and without the classifier,
    at which input sizes).

    Example:

    >>> weights_summary("ResNet50", (224, 224, 3))
    'ImageNet: with top at 224x224; without top at any size'
    """
    if keras_application in ("MobileNet", "MobileNetV2"):
        v1 = keras_application == "MobileNet"
        sizes = MOBILENET_SIZES if v1 else MOBILENET_V2_SIZES
        alphas = MOBILENET_ALPHAS if v1 else MOBILENET_V2_ALPHAS
        return (
            f"ImageNet: with top at {'/'.join(map(str, sizes))}; without "
            f"top at any size; alpha {'/'.join(map(str, alphas))}; no "
            "published hash (SHA-256 recorded on first use)"
        )
    height, width = input_size[:2]
    line = f"ImageNet: with top at {height}x{width}; without top at any size"
    if keras_application.startswith("MobileNetV3"):
        line += "; alpha 0.75/1.0 (minimalistic 1.0)"
    return line
