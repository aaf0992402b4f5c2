"""Every activation and its derivative, drawn by the library's own layers (the book's figures 7-31).

One command writes, into ``OUT/activations/``:

* ``<name>.png`` for every activation: the function (left) and its derivative
  (right), both computed by the layer itself (``forward``, then ``backward`` of
  a vector of ones, which for an elementwise activation is f'(x));
* ``family_<family>.png``: the functions and derivatives of one family
  (sigmoidal, chapter 7; rectifier, chapter 8; modern, chapter 9) overlaid
  (the families of :data:`kernels.activations.FAMILIES`).

The book's parameters are used where its figures state them: Leaky ReLU
alpha = 0.1 (figures 20-21), PReLU alpha = 0.2 (22-23), RReLU l = 0.1, u = 0.3
(24-25), ELU alpha = 1 (26-27). RReLU and Noisy ReLU are random in training:
their panels show the evaluation-mode curve and, as dots, one training-mode
draw per point. Softmax is vector-valued: it is drawn for two inputs (x, 0),
where its first output is the logistic sigmoid of x.

Run::

    python examples/activation_figures.py [--out DIR] [--device cpu|gpu|auto]
"""

from __future__ import annotations

import numpy as np

import backend
from _common import make_parser, output_dir, pyplot, save_figure, select_device

#: The book's figure numbers (function, derivative) for the activations it draws.
BOOK_FIGURES = {
    "sigmoid": (7, 8), "tanh": (9, 11), "softsign": (12, 13), "hard_sigmoid": (14, 15),
    "hard_tanh": (16, 17), "relu": (18, 19), "leaky_relu": (20, 21), "prelu": (22, 23),
    "rrelu": (24, 25), "elu": (26, 27), "selu": (28, 29), "noisy_relu": (30, 31),
}

#: Constructor arguments of the book's figures.
BOOK_PARAMETERS = {
    "leaky_relu": {"alpha": 0.1},
    "prelu": {"init": 0.2},
    "rrelu": {"lower": 0.1, "upper": 0.3},
    "elu": {"alpha": 1.0},
}

RANDOM_IN_TRAINING = ("rrelu", "noisy_relu")


def activation_families() -> dict:
    """``{family: [names]}`` from :data:`kernels.activations.FAMILIES`."""
    from kernels.activations import FAMILIES

    return {family: list(names) for family, names in FAMILIES.items()}


def make_activation(name: str):
    """The layer for ``name`` with the book's parameters where its figures state them."""
    from layers import get_activation

    return get_activation(name, **BOOK_PARAMETERS.get(name, {}))


def evaluate(layer, x, training: bool):
    """``(f(x), f'(x))`` as NumPy arrays, computed by ``layer`` in the given mode.

    ``x`` is a 1-D NumPy array. Softmax gets the two-column input (x, 0) and
    reports its first output and d(output_0)/d(x).
    """
    layer.train(training)
    vector_valued = type(layer).__name__ == "Softmax"
    inp = np.stack([x, np.zeros_like(x)], axis=1) if vector_valued else x.reshape(-1, 1)
    inp = backend.to_device(inp.astype(backend.get_default_dtype()))
    out = layer.forward(inp)
    xp = backend.get_array_module(out)
    grad_out = xp.zeros_like(out)
    if vector_valued:
        grad_out[:, 0] = 1
    else:
        grad_out[...] = 1
    grad_in, _ = layer.backward(grad_out)
    out, grad_in = backend.to_numpy(out), backend.to_numpy(grad_in)
    return out[:, 0].astype(np.float64), grad_in[:, 0].astype(np.float64)


def draw(name: str, family: str, x, out_dir):
    """Write ``out_dir/<name>.png``; return (path, f(x), f'(x)) in evaluation mode."""
    plt = pyplot()
    layer = make_activation(name)
    y, dy = evaluate(layer, x, training=False)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_f.plot(x, y, color="C0", linewidth=2, label="evaluation" if name in RANDOM_IN_TRAINING else None)
    ax_d.plot(x, dy, color="C3", linewidth=2)
    if name in RANDOM_IN_TRAINING:
        y_t, dy_t = evaluate(layer, x[::4], training=True)
        ax_f.plot(x[::4], y_t, ".", color="C1", markersize=3, label="training (one draw)")
        ax_d.plot(x[::4], dy_t, ".", color="C1", markersize=3)
        ax_f.legend(fontsize=8)
        layer.eval()
    params = ", ".join(f"{'alpha' if k == 'init' else k} = {v:g}" for k, v in BOOK_PARAMETERS.get(name, {}).items())
    label = f"{type(layer).__name__}" + (f" ({params})" if params else "")
    figs = BOOK_FIGURES.get(name)
    where = f"book figures {figs[0]} and {figs[1]}" if figs else f"{family} activation"
    ax_f.set_title(f"{label}: f(x)")
    ax_d.set_title(f"{label}: f'(x)")
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="0.7", linewidth=0.8)
        ax.axvline(0, color="0.7", linewidth=0.8)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    fig.suptitle(where, fontsize=9)
    return save_figure(fig, out_dir, f"{name}.png"), y, dy


def draw_family(family: str, curves: dict, x, out_dir):
    """Overlay the functions and derivatives of one family; write ``family_<family>.png``."""
    plt = pyplot()
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, (y, dy)) in enumerate(curves.items()):
        ax_f.plot(x, y, color=f"C{i % 10}", label=name)
        ax_d.plot(x, dy, color=f"C{i % 10}", label=name)
    ax_f.set_title(f"{family}: f(x)")
    ax_d.set_title(f"{family}: f'(x)")
    for ax in (ax_f, ax_d):
        ax.grid(alpha=0.3)
        ax.set_xlabel("x")
    ax_f.legend(fontsize=8)
    return save_figure(fig, out_dir, f"family_{family}.png")


def _sample(x, y, dy) -> dict:
    """f and f' at x = -2 and x = 1 (the grid contains both points)."""
    i_m2, i_1 = int(np.argmin(np.abs(x + 2))), int(np.argmin(np.abs(x - 1)))
    return {"f(-2)": y[i_m2], "f(1)": y[i_1], "df(-2)": dy[i_m2], "df(1)": dy[i_1]}


def _print_row(family, name, v, note) -> None:
    print(f"  {family:<10s} {name:<13s} {v['f(-2)']:9.4f} {v['f(1)']:9.4f} {v['df(-2)']:9.4f} "
          f"{v['df(1)']:9.4f}  {note}")


def main(argv=None) -> dict:
    """Draw every activation; returns ``{"figures", "values": {name: {"f(-2)", "f(1)", "df(-2)", "df(1)"}}, "out"}``."""
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    select_device(args.device)
    out_dir = output_dir(args.out / "activations")
    x = np.linspace(-5.0, 5.0, 201 if args.quick else 1001)
    previous = backend.set_default_dtype(np.float64)
    figures, values = [], {}
    try:
        print(f"Activation figures into {out_dir} (RReLU and Noisy ReLU: evaluation curve + one training draw)")
        headers = ("f(-2)", "f(1)", "f'(-2)", "f'(1)")
        print(f"  {'family':<10s} {'activation':<13s} " + " ".join(f"{h:>9s}" for h in headers) + "  book figures")
        for family, names in activation_families().items():
            curves = {}
            for name in names:
                path, y, dy = draw(name, family, x, out_dir)
                figures.append(path)
                curves[name] = (y, dy)
                values[name] = _sample(x, y, dy)
                figs = BOOK_FIGURES.get(name)
                _print_row(family, name, values[name], f"{figs[0]}, {figs[1]}" if figs else "-")
            figures.append(draw_family(family, curves, x, out_dir))
        # Softmax is not elementwise (not in FAMILIES): drawn for the two inputs (x, 0).
        path, y, dy = draw("softmax", "output", x, out_dir)
        figures.append(path)
        values["softmax"] = _sample(x, y, dy)
        _print_row("output", "softmax", values["softmax"], "-  (of (x, 0): its first output is sigmoid(x))")
    finally:
        backend.set_default_dtype(previous)
    return {"figures": figures, "values": values, "out": out_dir}


if __name__ == "__main__":
    main()
