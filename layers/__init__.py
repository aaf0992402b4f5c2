"""camadas layers: the book's Layer protocol and every layer, loss and model built on it.

``from layers.base import Layer`` works exactly as the book prints it.

==================  ==========================================================
subpackage          contents
==================  ==========================================================
``core``            Dense, Dropout, Flatten, Embedding
``activations``     the sigmoidal, rectifier and modern activations, Softmax
``convolution``     Convolution1D/2D, depthwise, separable and transposed
                    convolutions, pooling, ZeroPadding2D, UpSampling2D,
                    SqueezeExcitation
``augmentation``    RandomFlip, RandomTranslation, RandomRotation, GaussianNoise
``normalization``   BatchNormalization, LayerNormalization
``containers``      Sequential, Residual, Add, Concatenate, Multiply, Identity
``attention``       attention, Transformer blocks, positional encodings, ViT patches (ch. 26)
``recurrent``       SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed
``losses``          the losses and ``get_loss``
``training``        fit / evaluate / predict, History, callbacks, metrics, diagnostics
``saving``          checkpoints and the registry of public layer names
==================  ==========================================================

Modules that moved keep their old import paths (``layers.dense``,
``layers.checkpoint``, ...: :mod:`backend.moved`).
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend", "kernels", "optimizers"))  # one clear error if a sibling is not ours

from backend.moved import alias_modules, package_getattr

from . import initializers, testing
from .activations import (ELU, GELU, SELU, HardSigmoid, HardTanh, LeakyReLU, Mish, NoisyReLU, PReLU, ReLU, RReLU,
                          Sigmoid, SiLU, Softmax, Softplus, Softsign, Swish, Tanh, get_activation)
from .attention import (ClassToken, LearnedPositionalEmbedding, MultiHeadAttention, PatchEmbedding,
                        ScaledDotProductAttention, SinusoidalPositionalEncoding, TokenPooling, TransformerDecoderBlock,
                        TransformerEncoderBlock)
from .augmentation import GaussianNoise, RandomFlip, RandomRotation, RandomTranslation
from .base import Layer
from .containers import Add, Concatenate, Container, Identity, Multiply, Residual, Sequential
from .convolution import (AveragePooling2D, Convolution1D, Convolution2D, Convolution2DTranspose,
                          DepthwiseConvolution2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D,
                          SeparableConvolution2D, SqueezeExcitation, UpSampling2D, ZeroPadding2D)
from .core import Dense, Dropout, Embedding, Flatten
from .losses import (BinaryCrossEntropy, CategoricalCrossEntropy, Hinge, Huber, KLDivergence, Loss, MeanAbsoluteError,
                     MeanSquaredError, MulticlassHinge, SparseCategoricalCrossEntropy, get_loss)
from .normalization import BatchNormalization, LayerNormalization
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN, TimeDistributed
from .saving import checkpoint, register_layer
from .saving.checkpoint import CheckpointError
from .training import (Callback, EarlyStopping, History, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
                       callbacks, metrics)

#: Module paths of camadas 0.1 -> where the module lives now.
MOVED_MODULES = {
    "dense": "layers.core.dense",
    "dropout": "layers.core.dropout",
    "flatten": "layers.core.flatten",
    "conv": "layers.convolution.conv2d",
    "pooling": "layers.convolution.pooling",
    "sequential": "layers.containers.sequential",
    "training_data": "layers.training.data",
    "history": "layers.training.history",
    "callbacks": "layers.training.callbacks",
    "metrics": "layers.training.metrics",
    "dead_relu": "layers.training.diagnostics",
    "checkpoint": "layers.saving.checkpoint",
    "loss_base": "layers.losses.base",
    "loss_classification": "layers.losses.classification",
    "loss_regression": "layers.losses.regression",
    "validation": "backend.checks",
}
alias_modules(__name__, MOVED_MODULES)
__getattr__ = package_getattr(__name__)
