"""Layers: the chapter's blocks and the building blocks the zoo needs."""

from kerasblocks.layers.attention_scoring import (
    AdditiveAttention as AdditiveAttention,
)
from kerasblocks.layers.attention_scoring import (
    DotProductAttention as DotProductAttention,
)
from kerasblocks.layers.attention_scoring import (
    MaskedSoftmax as MaskedSoftmax,
)
from kerasblocks.layers.chapter import MLP as MLP
from kerasblocks.layers.chapter import CenteredLayer as CenteredLayer
from kerasblocks.layers.chapter import FixedHiddenMLP as FixedHiddenMLP
from kerasblocks.layers.chapter import NestMLP as NestMLP
from kerasblocks.layers.chapter import ScratchDense as ScratchDense
from kerasblocks.layers.classic import Inception as Inception
from kerasblocks.layers.classic import NiNBlock as NiNBlock
from kerasblocks.layers.classic import VGGBlock as VGGBlock
from kerasblocks.layers.convnext import ConvNeXtBlock as ConvNeXtBlock
from kerasblocks.layers.decoder import (
    TransformerDecoderBlock as TransformerDecoderBlock,
)
from kerasblocks.layers.dense import DenseBlock as DenseBlock
from kerasblocks.layers.dense import TransitionBlock as TransitionBlock
from kerasblocks.layers.efficientnet import FusedMBConv as FusedMBConv
from kerasblocks.layers.efficientnet import MBConv as MBConv
from kerasblocks.layers.embedding import ClassToken as ClassToken
from kerasblocks.layers.embedding import (
    LearnedPositionEmbedding as LearnedPositionEmbedding,
)
from kerasblocks.layers.embedding import PatchEmbedding as PatchEmbedding
from kerasblocks.layers.embedding import PatchGrid as PatchGrid
from kerasblocks.layers.embedding import (
    PositionalEncoding as PositionalEncoding,
)
from kerasblocks.layers.embedding import SelectToken as SelectToken
from kerasblocks.layers.function import Function as Function
from kerasblocks.layers.inception import ConvBN as ConvBN
from kerasblocks.layers.inception import InceptionA as InceptionA
from kerasblocks.layers.inception import InceptionB as InceptionB
from kerasblocks.layers.inception import InceptionC as InceptionC
from kerasblocks.layers.inception import InceptionD as InceptionD
from kerasblocks.layers.inception import InceptionE as InceptionE
from kerasblocks.layers.inception_resnet import (
    InceptionResNetBlock as InceptionResNetBlock,
)
from kerasblocks.layers.inception_resnet import (
    InceptionResNetReduction as InceptionResNetReduction,
)
from kerasblocks.layers.mobile import (
    DepthwiseSeparableBlock as DepthwiseSeparableBlock,
)
from kerasblocks.layers.mobile import InvertedResidual as InvertedResidual
from kerasblocks.layers.mobile_v3 import (
    MobileNetV3Block as MobileNetV3Block,
)
from kerasblocks.layers.mobile_v3 import SqueezeExcite as SqueezeExcite
from kerasblocks.layers.multi_head_attention import (
    MultiHeadAttention as MultiHeadAttention,
)
from kerasblocks.layers.nasnet import (
    NASNetNormalCell as NASNetNormalCell,
)
from kerasblocks.layers.nasnet import (
    NASNetReductionCell as NASNetReductionCell,
)
from kerasblocks.layers.nasnet_separable import (
    NASNetSeparableBlock as NASNetSeparableBlock,
)
from kerasblocks.layers.norm import BatchNorm as BatchNorm
from kerasblocks.layers.preprocessing import (
    ImagePreprocessing as ImagePreprocessing,
)
from kerasblocks.layers.regularization import DropPath as DropPath
from kerasblocks.layers.residual import BasicBlock as BasicBlock
from kerasblocks.layers.residual import BottleneckBlock as BottleneckBlock
from kerasblocks.layers.resnext import ResNeXtBlock as ResNeXtBlock
from kerasblocks.layers.rnn_cells import GRUCell as GRUCell
from kerasblocks.layers.rnn_cells import LSTMCell as LSTMCell
from kerasblocks.layers.rnn_cells import RNNCell as RNNCell
from kerasblocks.layers.seq2seq import AppendContext as AppendContext
from kerasblocks.layers.seq2seq import BahdanauDecoder as BahdanauDecoder
from kerasblocks.layers.tokens import CheckTokenIds as CheckTokenIds
from kerasblocks.layers.tokens import OneHot as OneHot
from kerasblocks.layers.tokens import PaddingMask as PaddingMask
from kerasblocks.layers.transformer import AddNorm as AddNorm
from kerasblocks.layers.transformer import PositionWiseFFN as PositionWiseFFN
from kerasblocks.layers.transformer import (
    TransformerEncoderBlock as TransformerEncoderBlock,
)
from kerasblocks.layers.xception import XceptionBlock as XceptionBlock
