"""Builders of named architectures (book chapters 22.9, 23 and 26), each returning an ordinary Sequential-based model.

Every builder takes the input shape and the number of classes, and returns a
model made of the library's layers (so it trains with ``fit``, saves and
loads like any other).
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend", "layers"))  # one clear error if a sibling is not ours

from .inception import inception_small
from .lenet import lenet5
from .resnet import plain_cnn, resnet
from .senet import se_resnet
from .vgg import vgg_small
from .xception import xception_small

#: builder name -> (builder, book section)
ARCHITECTURES = {
    "lenet5": (lenet5, "22.9.1"),
    "vgg_small": (vgg_small, "22.9.4"),
    "inception_small": (inception_small, "22.9.3"),
    "resnet": (resnet, "22.9.5, 23"),
    "xception_small": (xception_small, "22.9.6"),
    "se_resnet": (se_resnet, "22.9.7"),
}

__all__ = ["ARCHITECTURES", "inception_small", "lenet5", "plain_cnn", "resnet", "se_resnet", "vgg_small",
           "xception_small"]
