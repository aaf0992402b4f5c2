"""Training: the one loop (fit, evaluate, predict) for any Layer, and what it reports.

=================  ===================================================================
module             contents
=================  ===================================================================
``loop``           :func:`fit`, :func:`evaluate`, :func:`predict` (book chapter 6), the training step
``data``           data checks and batching, :class:`SequenceLengths` (padded sequences)
``batches``        arrays (memory-mapped too) or iterables of batches, prefetched in a thread
``history``        :class:`History`, what ``fit`` returns
``callbacks``      :class:`Callback`, :class:`EarlyStopping`, :class:`TerminateOnNaN`,
                   :class:`ReduceLROnPlateau`, :class:`ModelCheckpoint`
``metrics``        accuracy, top-k, precision, recall, F1, confusion matrix, MAE, RMSE, R², AUC
``diagnostics``    gradient norms per layer (7.8), dead units (8.3)
=================  ===================================================================
"""

from .callbacks import (
           Callback,
           EarlyStopping,
           ModelCheckpoint,
           ReduceLROnPlateau,
           TerminateOnNaN,
)
from .data import SequenceLengths
from .history import History
from .loop import TrainingStep, evaluate, evaluation_mode, fit, model_device, model_dtype, predict

__all__ = ["Callback", "EarlyStopping", "History", "ModelCheckpoint", "ReduceLROnPlateau", "SequenceLengths",
           "TerminateOnNaN", "TrainingStep", "evaluate", "evaluation_mode", "fit", "model_device", "model_dtype",
           "predict"]
