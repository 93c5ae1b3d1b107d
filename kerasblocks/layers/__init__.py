"""Layers: the chapter's blocks and the building blocks the zoo needs."""

from kerasblocks.layers.attention import AdditiveAttention as AdditiveAttention
from kerasblocks.layers.attention import (
    DotProductAttention as DotProductAttention,
)
from kerasblocks.layers.attention import MaskedSoftmax as MaskedSoftmax
from kerasblocks.layers.attention import (
    MultiHeadAttention as MultiHeadAttention,
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
from kerasblocks.layers.mobile import InvertedResidual as InvertedResidual
from kerasblocks.layers.norm import BatchNorm as BatchNorm
from kerasblocks.layers.recurrent import AppendContext as AppendContext
from kerasblocks.layers.recurrent import BahdanauDecoder as BahdanauDecoder
from kerasblocks.layers.recurrent import GRUCell as GRUCell
from kerasblocks.layers.recurrent import LSTMCell as LSTMCell
from kerasblocks.layers.recurrent import RNNCell as RNNCell
from kerasblocks.layers.residual import BasicBlock as BasicBlock
from kerasblocks.layers.residual import BottleneckBlock as BottleneckBlock
from kerasblocks.layers.residual import ResNeXtBlock as ResNeXtBlock
from kerasblocks.layers.tokens import CheckTokenIds as CheckTokenIds
from kerasblocks.layers.tokens import OneHot as OneHot
from kerasblocks.layers.tokens import PaddingMask as PaddingMask
from kerasblocks.layers.transformer import AddNorm as AddNorm
from kerasblocks.layers.transformer import PositionWiseFFN as PositionWiseFFN
from kerasblocks.layers.transformer import (
    TransformerDecoderBlock as TransformerDecoderBlock,
)
from kerasblocks.layers.transformer import (
    TransformerEncoderBlock as TransformerEncoderBlock,
)
