"""Builders of named architectures (book chapters 22.9, 23 and 26), each returning a model made of library layers.

Every builder validates its arguments and returns an ordinary Layer (a
Sequential, or a block such as :class:`EncoderDecoder`), so it trains with
``fit``, saves and loads like any other.

=========================  ==========================================  =======
builder                    model                                       section
=========================  ==========================================  =======
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
from .seq2seq import EncoderDecoder, encoder_decoder, greedy_decode
from .vit import vit

from . import onnx_converters  # noqa: F401  (the ONNX converters of TransformerClassifier and EncoderDecoder)

__all__ = ["EncoderDecoder", "TransformerClassifier", "encoder_decoder", "generate", "gpt", "greedy_decode",
           "sample_next", "vit"]
