"""Recurrent networks (book chapter 24): SimpleRNN (24.2), LSTM with peepholes (24.5.1-24.5.2), GRU (24.5.3).

:class:`Bidirectional` and :class:`TimeDistributed` wrap them; masks (or
lengths) let a batch hold sequences of different lengths
(:func:`~layers.recurrent.masking.sequence_mask`). Sequences are batch-major,
``(batch, steps, features)``; the compute is :mod:`kernels.recurrent`.
"""

from .base import Recurrent
from .gru import GRU
from .lstm import LSTM
from .masking import sequence_mask
from .simple import SimpleRNN
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["GRU", "LSTM", "Bidirectional", "Recurrent", "SimpleRNN", "TimeDistributed", "sequence_mask"]
