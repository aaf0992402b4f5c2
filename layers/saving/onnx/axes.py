"""Which axes of the exported file may vary: the batch always, other input axes on request (``dynamic_axes``).

The converters read every size that depends on the data from the tensors
when the file runs (``Shape``), so the graph itself serves any size; what
the file declares is its input and output shapes. An input axis named in
``dynamic_axes`` is declared by a name instead of a size; the output axes
that follow it are found by running ``predict`` on a second size of those
axes (n - 1, n + 1 or 2n, the first the model accepts) and declared by the
same name.
"""

from __future__ import annotations

from backend.checks import check_positive_int


def check_dynamic_axes(dynamic_axes, ndim: int) -> dict:
    """``{axis: name}`` from ``dynamic_axes`` (None, axes or ``{axis: name}``) for an input of ``ndim`` axes.

    Axes count the batch as 0 (as the file's input and ``torch.onnx.export``);
    the batch is always dynamic ("batch"), so the axes are in ``[1, ndim)``.
    An axis given without a name is named ``"input_axis_<axis>"``.

    Raises
    ------
    TypeError, ValueError
        Not a sequence or dict of ints, an axis out of range or given twice, a name that is not a
        non-empty string or is used twice.
    """
    where = "export_onnx"
    if dynamic_axes is None:
        return {}
    if isinstance(dynamic_axes, dict):
        pairs = list(dynamic_axes.items())
    elif isinstance(dynamic_axes, (tuple, list)):
        pairs = [(axis, None) for axis in dynamic_axes]
    else:
        raise TypeError(f"{where}: dynamic_axes: expected axes (e.g. (1,)) or a dict {{axis: name}}, "
                        f"got {type(dynamic_axes).__name__}")
    axes: dict = {}
    for axis, name in pairs:
        axis = check_positive_int(axis, "dynamic_axes", where=where)
        if axis >= ndim:
            raise ValueError(f"{where}: dynamic_axes: expected axes of the input (batch, *input_shape) in "
                             f"[1, {ndim - 1}] (0, the batch, is always dynamic), got {axis}")
        if axis in axes:
            raise ValueError(f"{where}: dynamic_axes: axis {axis} given twice")
        name = f"input_axis_{axis}" if name is None else name
        if not isinstance(name, str) or not name or name == "batch" or name in axes.values():
            raise ValueError(f"{where}: dynamic_axes[{axis}]: expected a new non-empty name (not 'batch'), "
                             f"got {name!r}")
        axes[axis] = name
    return axes


def output_dims(run, shape: tuple, expected: tuple, axes: dict) -> list:
    """The declared output dims: ``"batch"``, then a size, or an input axis's name where the size follows it.

    Parameters
    ----------
    run : callable
        ``run(input_shape) -> output shape`` (predict on zeros), raising TypeError or ValueError for a
        shape the model does not take.
    shape, expected : tuple
        The input shape with the batch axis, and the output's for it.
    axes : dict
        ``{axis: name}`` of :func:`check_dynamic_axes`.

    Raises
    ------
    ValueError
        The model takes no other size of the dynamic axes (n - 1, n + 1 and 2n were tried).
    """
    if not axes:
        return ["batch", *expected[1:]]
    tried, error = [], None
    for change in (lambda n: n - 1, lambda n: n + 1, lambda n: 2 * n):
        other = tuple(change(n) if axis in axes else n for axis, n in enumerate(shape))
        if min(other) < 1 or other in tried:
            continue
        tried.append(other)
        try:
            second = tuple(run(other))
            break
        except (TypeError, ValueError) as err:
            error = err
    else:
        raise ValueError(f"export_onnx: dynamic_axes: the model takes no other size on axes {sorted(axes)} than "
                         f"input_shape's (tried input shapes {[t[1:] for t in tried]}): {error}")
    dims: list = ["batch"]
    for k, (a, b) in enumerate(zip(expected[1:], second[1:]), start=1):
        followed = [name for axis, name in axes.items() if (shape[axis], other[axis]) == (a, b)]
        dims.append(a if a == b else followed[0] if followed else f"output_axis_{k}")
    return dims
