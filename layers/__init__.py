"""camadas layers: the book's Layer protocol and every layer, loss and model built on it.

``from layers.base import Layer`` works exactly as the book prints it.
"""

from .base import Layer
from .dense import Dense
from . import initializers, testing
