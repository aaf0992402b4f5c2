"""Builders of named architectures (book chapters 22.9, 23 and 26), each returning an ordinary Sequential-based model.

Every builder takes the input shape and the number of classes, and returns a
model made of the library's layers (so it trains with ``fit``, saves and
loads like any other).
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend", "layers"))  # one clear error if a sibling is not ours
