"""camadas kernels: the compute behind the layers, one package per op family.

* :mod:`kernels.activations`, :mod:`kernels.conv2d`, :mod:`kernels.pool2d`,
  :mod:`kernels.depthwise2d`: a dispatcher per op in the package's ``__init__``
  (NumPy arrays -> ``cpu``, CuPy arrays -> ``gpu``) and the book's loops in
  ``reference``; :mod:`kernels.reference` gathers the convolution and pooling loops.
* :mod:`kernels.normalization`: batch and layer normalization, the same shape
  (``cpu``, ``gpu``, ``reference``) with array-level dispatchers.
* :mod:`kernels.conv_transpose2d`, :mod:`kernels.conv1d`: built on
  :mod:`kernels.conv2d`'s dispatchers, with their own loops in ``reference``.
* Shared pieces: :mod:`kernels.geometry` (output sizes), :mod:`kernels.jit`
  (Numba settings), :mod:`kernels.threads` (helper threads),
  :mod:`kernels.cuda_launch` (numba-cuda launches).

Modules of camadas 0.1 that moved keep importing under their old names
(``kernels.conv2d_gpu`` is :mod:`kernels.conv2d.gpu`, the very same module).
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend",))  # one clear error if a sibling is not ours

from backend.moved import alias_modules, package_getattr

alias_modules(__name__, {
    "conv2d_gpu": "kernels.conv2d.gpu",
    "conv2d_registers": "kernels.conv2d.registers",
    "cuda_indexing": "kernels.cuda_launch",
    "pool2d_gpu": "kernels.pool2d.gpu",
})

__getattr__ = package_getattr(__name__)
