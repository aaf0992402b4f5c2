"""The core layers: :class:`Dense` (section 6.2), :class:`Dropout` (25.5), :class:`Flatten` (22.4),
:class:`Embedding` (chapters 24, 26).
"""

from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten

__all__ = ["Dense", "Dropout", "Embedding", "Flatten"]
