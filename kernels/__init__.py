"""camadas kernels: the compute behind the layers, one module per op family.

``kernels.reference`` keeps the book's nested loops as the executable
specification; the other modules hold Numba CPU kernels and GPU kernels
behind one-line dispatchers on the input array's type.
"""
