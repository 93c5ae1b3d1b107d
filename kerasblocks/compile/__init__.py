"""Compiled execution: graph and XLA forward/train steps without retracing.

`compile_forward` and `compile_train_step` build eager, graph
(`tf.function`) or XLA (`jit_compile=True`) functions with a dynamic batch
dimension, count their traces, validate inputs with one clear error, name
the layer and op when XLA cannot compile, and in mode "auto" measure
graph against XLA on the first call and keep the faster.
"""

from kerasblocks.compile._modes import MODES as MODES
from kerasblocks.compile._modes import Choice as Choice
from kerasblocks.compile._xla import XlaCompilationError as XlaCompilationError
from kerasblocks.compile.forward import CompiledFunction as CompiledFunction
from kerasblocks.compile.forward import compile_forward as compile_forward
from kerasblocks.compile.train import CompiledTrainStep as CompiledTrainStep
from kerasblocks.compile.train import compile_train_step as compile_train_step
