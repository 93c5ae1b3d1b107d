"""Layers: the chapter's blocks and the building blocks the zoo needs."""

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
from kerasblocks.layers.function import Function as Function
from kerasblocks.layers.mobile import InvertedResidual as InvertedResidual
from kerasblocks.layers.norm import BatchNorm as BatchNorm
from kerasblocks.layers.residual import BasicBlock as BasicBlock
from kerasblocks.layers.residual import BottleneckBlock as BottleneckBlock
from kerasblocks.layers.residual import ResNeXtBlock as ResNeXtBlock
