"""Training: the one loop (fit, evaluate, predict) for any Layer, and what it reports.

=================  ===================================================================
module             contents
=================  ===================================================================
``loop``           :func:`fit`, :func:`evaluate`, :func:`predict` (book chapter 6)
``data``           data checks and batching
``history``        :class:`History`, what ``fit`` returns
``callbacks``      :class:`Callback`, :class:`EarlyStopping`, :class:`TerminateOnNaN`,
                   :class:`ReduceLROnPlateau`, :class:`ModelCheckpoint`
``metrics``        accuracy where it applies
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
from .history import History
from .loop import evaluate, evaluation_mode, fit, model_device, model_dtype, predict

__all__ = ["Callback", "EarlyStopping", "History", "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN", "evaluate",
           "evaluation_mode", "fit", "model_device", "model_dtype", "predict"]
