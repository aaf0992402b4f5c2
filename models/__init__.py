"""Builders of named architectures (book chapters 22.9, 23 and 26), each returning a model made of library layers.

Every builder validates its arguments and returns an ordinary Layer (a
Sequential, or a block such as :class:`EncoderDecoder`), so it trains with
``fit``, saves and loads like any other.

=========================  ==========================================  =======
builder                    model                                       section
=========================  ==========================================  =======
``lenet5``                 LeNet-5                                     22.9.1
``inception_small``        GoogLeNet-style Inception modules           22.9.3
``vgg_small``              VGG-style stacks of 3x3 convolutions        22.9.4
``resnet(depth)``          ResNet with basic blocks (``plain_cnn``:    22.9.5, 23
                           the same without skip connections)
``xception_small``         depthwise-separable Xception                22.9.6
``se_resnet(depth)``       ResNet with squeeze-and-excitation          22.9.7
``vit``                    Vision Transformer classifier               26.7
``TransformerClassifier``  encoder-only classifier of id sequences     26.6.1
``gpt``                    decoder-only language model (+ generate)    26.6.2
``encoder_decoder``        encoder-decoder Transformer (+ greedy)      26.6.3
=========================  ==========================================  =======
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend", "layers"))  # one clear error if a sibling is not ours

from .encoder import TransformerClassifier
from .gpt import generate, gpt, sample_next
from .inception import inception_small
from .lenet import lenet5
from .resnet import plain_cnn, resnet
from .senet import se_resnet
from .seq2seq import EncoderDecoder, encoder_decoder, greedy_decode
from .vgg import vgg_small
from .vit import vit
from .xception import xception_small

from . import onnx_converters  # noqa: F401  (the ONNX converters of TransformerClassifier and EncoderDecoder)

#: CNN builder name -> (builder, book section)
ARCHITECTURES = {
    "lenet5": (lenet5, "22.9.1"),
    "vgg_small": (vgg_small, "22.9.4"),
    "inception_small": (inception_small, "22.9.3"),
    "resnet": (resnet, "22.9.5, 23"),
    "xception_small": (xception_small, "22.9.6"),
    "se_resnet": (se_resnet, "22.9.7"),
}

__all__ = ["ARCHITECTURES", "EncoderDecoder", "TransformerClassifier", "encoder_decoder", "generate", "gpt",
           "greedy_decode", "inception_small", "lenet5", "plain_cnn", "resnet", "sample_next", "se_resnet",
           "vgg_small", "vit", "xception_small"]
