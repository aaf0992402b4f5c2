"""camadas layers: the book's Layer protocol and every layer, loss and model built on it.

``from layers.base import Layer`` works exactly as the book prints it.
"""

from .base import Layer
from .dense import Dense
from . import initializers, testing
from .dropout import Dropout
from .normalization import BatchNormalization, LayerNormalization
from .losses import (BinaryCrossEntropy, CategoricalCrossEntropy, Hinge, Huber, KLDivergence, Loss, MeanAbsoluteError,
                     MeanSquaredError, MulticlassHinge, SparseCategoricalCrossEntropy, get_loss)
from .sequential import Sequential
from .history import History
from .callbacks import Callback, EarlyStopping, TerminateOnNaN
from .checkpoint import CheckpointError
from . import callbacks, checkpoint, metrics
from .conv import Convolution2D
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .flatten import Flatten
from .activations import (ELU, GELU, SELU, HardSigmoid, HardTanh, LeakyReLU, Mish, NoisyReLU, PReLU, ReLU, RReLU,
                          Sigmoid, SiLU, Softmax, Softplus, Softsign, Swish, Tanh, get_activation)
