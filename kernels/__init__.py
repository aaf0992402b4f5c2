"""camadas kernels: the compute behind the layers, one module per op family.

``kernels.reference`` keeps the book's nested loops as the executable
specification; the other modules hold Numba CPU kernels and GPU kernels
behind one-line dispatchers on the input array's type.
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend",))  # one clear error if a sibling is not ours
