"""The book's gradient descent function minimiser, section 6.1.3 (eq. 6.1, Algorithm 1)."""

from __future__ import annotations

import numpy as np

import backend


def gradient_norm(grad) -> float:
    """‖g‖₂ as a Python float: |g| for a scalar, the Euclidean norm for an array (NumPy or CuPy)."""
    if hasattr(grad, "shape"):
        xp = backend.get_array_module(grad)
        return float(xp.sqrt(xp.sum(xp.abs(grad) ** 2)))
    return abs(grad)


class GradientDescent:
    """The book's ``GradientDescent`` class (section 6.1.3), for scalars and vectors.

    Repeats x <- x - ε ∇f(x) (eq. 6.1) for at most ``epochs`` iterations,
    stopping early when ‖∇f(x)‖ < ``tolerance``. Identical to the book's code
    block except for the stopping test: the book's ``abs(grad) < self.tol``
    is ambiguous for a vector gradient, so the gradient's norm is used
    (``abs`` for a scalar, as in the book).

    Parameters
    ----------
    function : callable(x) -> float
        f, the function to minimise (kept as ``self.f``, as in the book).
    function_prime : callable(x) -> gradient
        ∇f, same shape as x (a number for a scalar x).
    initial_point : float or array_like
        x₀; lists and tuples become NumPy float arrays.
    learning_rate : float
        ε (default 0.001).
    epochs : int
        Maximum number of iterations (default 100).
    tolerance : float
        Stop when ‖∇f(x)‖ < tolerance (default 1e-6).

    Attributes
    ----------
    ip : the current point;  path : list of the points visited.

    Examples
    --------
    >>> gd = GradientDescent(lambda x: x**2, lambda x: 2*x, 3.0, learning_rate=0.1, epochs=500)
    >>> x_min, path = gd.update_step()          # x_min ~ 0, path[0] == 3.0
    """

    def __init__(self, function, function_prime, initial_point
                 , learning_rate=0.001, epochs=100, tolerance=1e-6):
        if isinstance(initial_point, (list, tuple)):
            initial_point = np.asarray(initial_point, dtype=np.float64)
        self.f = function
        self.fp = function_prime
        self.ip = initial_point
        self.lr = learning_rate
        self.ep = epochs
        self.tol = tolerance
        self.path = []

    def update_step(self):
        """Run the iterations; return ``(point, path)`` (the final point and the list of points visited).

        As in the book, each iteration first records the current point, so a
        run that stops on the tolerance ends with the converged point in
        ``path``; a run that uses all ``epochs`` returns the point after the
        last update, which is not in ``path``.
        """
        for i in range(self.ep):  # noqa: B007 (the book's code as printed)
            self.path.append(self.ip)
            grad = self.fp(self.ip)
            if gradient_norm(grad) < self.tol: break  # noqa: E701 (the book's code as printed)
            self.ip = self.ip + self.lr * (-grad)
        return self.ip, self.path
