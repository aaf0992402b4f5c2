"""camadas benchmarks: ``python -m bench <command>`` (console script ``camadas-bench``).

Commands (one module each, imported only when chosen):

* ``activations``: the 16 activations forward and backward, CPU and GPU, against
  a copy roofline, the book's NumPy code and (optionally) PyTorch; answers the
  book's question of section 7.6 and fills sections 7.9 and 8.7.
* ``kernels``: convolution and pooling kernels.
* ``training``: end-to-end training throughput.
* ``device-check``: every GPU check in one go (``--out DIR``), for a GPU lent for minutes.

Shared pieces: :mod:`bench.timing` (the one timer, synchronization, first
calls), :mod:`bench.common` (devices, rooflines, environment, tables, JSON),
:mod:`bench.options` (option values checked before a run).
The pytest-benchmark suite is in ``benchmarks/`` (not shipped): ``pytest benchmarks --benchmark-only``.
The library never imports this package.
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend", "kernels", "layers", "optimizers"))  # one clear error if a sibling is not ours
