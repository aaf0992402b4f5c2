"""Gradient descent (book section 6.1) and the chapter-6 optimizers racing on 2-D landscapes.

Part 1, the book's figure 1: the book's ``GradientDescent`` class (section
6.1.3) minimizes the polynomial f(x) = x^2 - 4x + 5 (minimum at x = 2) from
x0 = -2 with a learning rate that is too small (it creeps), one that suits,
one that is too large (it jumps over the minimum from side to side) and one
beyond 2/f'' = 1 (it diverges).

Part 2, the optimization demo of slides 003 and the methods of chapter 6
(sections 6.3-6.5): GD, Momentum (eq. 6.14), Nesterov, AdaGrad, RMSProp, Adam,
Nadam and Newton (with the exact Hessian) race from the same start on

* a convex bowl, f = x^2/2 + 5 y^2 (elongated: condition number 10);
* Rosenbrock's banana valley, f = (1 - x)^2 + 100 (y - x^2)^2, minimum (1, 1);
* a saddle, f = x^2 + y^4/4 - y^2/2: a saddle point at (0, 0) between the two
  minima (0, +-1); the start lies almost on the ridge y = 0.

Each optimizer's learning rate (Momentum and Nesterov: momentum 0.9; Adam
and Nadam: their default betas) is the value of the grid 1e-4, 2e-4, 5e-4, ...,
0.5, 1 that settled fastest within 1e-3 of the minimum on that landscape (the
best final value where none did), so the race compares the methods rather than
the tuning. Newton takes the full step (learning rate 1) with the exact Hessian.

For each landscape the script prints, per optimizer, the steps taken, where it
stopped, f there, and the step from which on f stays within 1e-3 of the
minimum ("settled"), and plots the paths over the contour lines.

Run::

    python examples/gradient_descent.py [--quick] [--out DIR] [--no-plot]

The device option is accepted for uniformity; the landscapes are 2-D NumPy
points (the optimizers run on whichever device their arrays live on).
"""

from __future__ import annotations

import numpy as np

from _common import make_parser, pyplot, save_figure, select_device

# --------------------------------------------------------------------------- #
# Part 1: the book's GradientDescent on a 1-D polynomial (figure 1)
# --------------------------------------------------------------------------- #


def polynomial(x):
    """f(x) = x^2 - 4x + 5 = (x - 2)^2 + 1."""
    return x**2 - 4 * x + 5


def polynomial_prime(x):
    """f'(x) = 2x - 4."""
    return 2 * x - 4


POLY_START = -2.0
POLY_RATES = {"too small": 0.02, "suitable": 0.3, "too large": 0.95, "diverges": 1.05}


def run_polynomial(epochs: int) -> dict:
    """Run the book's GradientDescent once per learning rate; return the paths."""
    from optimizers import GradientDescent

    results = {}
    print("Part 1 - the book's GradientDescent on f(x) = x^2 - 4x + 5 (minimum f(2) = 1), "
          f"x0 = {POLY_START}, {epochs} epochs, tolerance 1e-6")
    print(f"  {'learning rate':>20s}  {'steps':>5s}  {'final x':>12s}  {'f(final x)':>12s}")
    for label, lr in POLY_RATES.items():
        gd = GradientDescent(polynomial, polynomial_prime, POLY_START, learning_rate=lr,
                             epochs=epochs, tolerance=1e-6)
        point, path = gd.update_step()
        point = float(point)
        path = [float(p) for p in path]
        results[label] = {"learning_rate": lr, "x": point, "f": polynomial(point), "path": path}
        print(f"  {label + f' ({lr})':>20s}  {len(path):5d}  {point:12.5g}  {polynomial(point):12.5g}")
    return results


def plot_polynomial(results, out):
    plt = pyplot()
    shown = [k for k in results if k != "diverges"]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6))
    grid = np.linspace(-2.5, 6.5, 300)
    for ax, label in zip(axes, shown):
        r = results[label]
        path = np.clip(np.array(r["path"]), -2.5, 6.5)
        ax.plot(grid, polynomial(grid), color="0.6")
        ax.plot(path, polynomial(path), "o-", color="C3", markersize=3, linewidth=0.8)
        ax.plot(path[0], polynomial(path[0]), "s", color="k")
        ax.set_title(f"learning rate {r['learning_rate']} ({label})\n{len(r['path'])} steps")
        ax.set_xlabel("x")
    axes[0].set_ylabel("f(x) = x² - 4x + 5")
    fig.suptitle("Gradient descent step size (book figure 1)", y=1.06)
    return save_figure(fig, out, "gd_learning_rates.png")


# --------------------------------------------------------------------------- #
# Part 2: the optimizers of chapter 6 racing on 2-D landscapes
# --------------------------------------------------------------------------- #


class Landscape:
    """A 2-D function with its gradient, Hessian, minimum, start and plot window."""

    def __init__(self, name, f, grad, hess, minimum, start, window, epochs, rates, levels, minima=None):
        self.name, self.f, self.grad, self.hess = name, f, grad, hess
        self.minimum = np.asarray(minimum, dtype=float)
        self.minima = np.asarray(minima if minima is not None else [minimum], dtype=float)
        self.f_min = float(f(self.minimum))
        self.start = np.asarray(start, dtype=float)
        self.window, self.epochs, self.rates, self.levels = window, epochs, rates, levels


def _bowl():
    return Landscape(
        "convex bowl",
        f=lambda p: 0.5 * p[0] ** 2 + 5.0 * p[1] ** 2,
        grad=lambda p: np.array([p[0], 10.0 * p[1]]),
        hess=lambda p: np.array([[1.0, 0.0], [0.0, 10.0]]),
        minimum=(0.0, 0.0), start=(-4.5, 1.5), window=((-5, 2), (-2, 2)), epochs=200,
        rates={"GD": 0.1, "Momentum": 0.05, "Nesterov": 0.1, "AdaGrad": 1.0, "RMSProp": 0.2,
               "Adam": 1.0, "Nadam": 1.0, "Newton": 1.0},
        levels=np.geomspace(0.01, 30, 14),
    )


def _rosenbrock():
    def f(p):
        return (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2

    def grad(p):
        x, y = p
        return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])

    def hess(p):
        x, y = p
        return np.array([[2 - 400 * (y - 3 * x**2), -400 * x], [-400 * x, 200.0]])

    return Landscape(
        "Rosenbrock", f, grad, hess, minimum=(1.0, 1.0), start=(-1.5, 2.0),
        window=((-2, 2), (-1, 3)), epochs=2000,
        rates={"GD": 2e-3, "Momentum": 2e-3, "Nesterov": 1e-3, "AdaGrad": 1.0, "RMSProp": 5e-3,
               "Adam": 1.0, "Nadam": 0.02, "Newton": 1.0},
        levels=np.geomspace(0.05, 2000, 16),
    )


def _saddle():
    return Landscape(
        "saddle",
        f=lambda p: p[0] ** 2 + 0.25 * p[1] ** 4 - 0.5 * p[1] ** 2,
        grad=lambda p: np.array([2 * p[0], p[1] ** 3 - p[1]]),
        hess=lambda p: np.array([[2.0, 0.0], [0.0, 3 * p[1] ** 2 - 1]]),
        minimum=(0.0, 1.0), minima=[(0.0, 1.0), (0.0, -1.0)], start=(-1.5, 1e-3),
        window=((-1.8, 1.8), (-1.6, 1.6)), epochs=200,
        rates={"GD": 0.5, "Momentum": 0.2, "Nesterov": 0.5, "AdaGrad": 1.0, "RMSProp": 0.05,
               "Adam": 0.1, "Nadam": 1.0, "Newton": 1.0},
        levels=np.linspace(-0.25, 3, 14),
    )


LANDSCAPES = {"bowl": _bowl, "rosenbrock": _rosenbrock, "saddle": _saddle}
OPTIMIZERS = ("GD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "Nadam", "Newton")


def make_optimizer(name, learning_rate, landscape):
    """The library's optimizer ``name`` (chapter 6) with this learning rate."""
    import optimizers

    if name == "GD":
        return optimizers.SGD(learning_rate=learning_rate)
    if name in ("Momentum", "Nesterov"):
        return getattr(optimizers, name)(learning_rate=learning_rate, momentum=0.9)
    if name == "Newton":
        return optimizers.Newton(hessian=landscape.hess, learning_rate=learning_rate)
    return getattr(optimizers, name)(learning_rate=learning_rate)


def race(landscape, epochs=None) -> dict:
    """Run every optimizer from the landscape's start; return one row per optimizer."""
    from optimizers import minimize

    epochs = landscape.epochs if epochs is None else epochs
    rows = {}
    for name in OPTIMIZERS:
        lr = landscape.rates[name]
        opt = make_optimizer(name, lr, landscape)
        x, path = minimize(landscape.f, landscape.grad, landscape.start.copy(), opt,
                           epochs=epochs, tolerance=1e-8)
        path = np.array([np.asarray(p, dtype=float) for p in path])
        values = np.array([landscape.f(p) for p in path])
        outside = np.flatnonzero(~(values - landscape.f_min < 1e-3))  # NaN counts as outside
        settled = int(outside[-1]) + 1 if outside.size else 0
        x = np.asarray(x, dtype=float)
        rows[name] = {
            "learning_rate": lr, "steps": len(path) - 1, "x": x, "f": float(landscape.f(x)),
            "settled": settled if settled < len(values) else None, "path": path,
        }
    return rows


def print_race(landscape, rows):
    start = ", ".join(f"{v:g}" for v in landscape.start)
    minima = " and ".join("(" + ", ".join(f"{v:g}" for v in m) + ")" for m in landscape.minima)
    print(f"\n{landscape.name}: start ({start}), minimum {minima}, f there = {landscape.f_min:g}")
    print("  (settled at: the step from which on f stays within 1e-3 of its minimum)")
    print(f"  {'optimizer':<10s} {'lr':>7s} {'steps':>6s} {'stopped at':>18s} {'f there':>11s} "
          f"{'settled at':>10s}")
    for name, r in rows.items():
        reached = "never" if r["settled"] is None else str(r["settled"])
        where = f"({r['x'][0]:.4f}, {r['x'][1]:.4f})".replace("-0.0000", "0.0000")
        note = ""
        if r["settled"] is None and np.linalg.norm(landscape.grad(r["x"])) < 1e-6:
            note = "  <- stopped on a critical point that is not a minimum"
        print(f"  {name:<10s} {r['learning_rate']:7g} {r['steps']:6d} {where:>18s} {r['f']:11.4g} "
              f"{reached:>10s}{note}")


def plot_race(landscape, rows, out, tag):
    plt = pyplot()
    (x0, x1), (y0, y1) = landscape.window
    xx, yy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    zz = landscape.f(np.array([xx, yy]))
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.contour(xx, yy, zz, levels=landscape.levels, cmap="Greys", linewidths=0.7)
    for i, (name, r) in enumerate(rows.items()):
        path = r["path"]
        ax.plot(path[:, 0], path[:, 1], "-", color=f"C{i}", linewidth=1.3,
                label=f"{name} (lr {r['learning_rate']:g})")
        ax.plot(path[-1, 0], path[-1, 1], "o", color=f"C{i}", markersize=4)
    ax.plot(*landscape.start, "ks", label="start")
    ax.plot(landscape.minima[:, 0], landscape.minima[:, 1], "k*", markersize=12, linestyle="none",
            label="minimum")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(f"Optimizers of chapter 6 on the {landscape.name}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, out, f"optimizers_{tag}.png")


def main(argv=None) -> dict:
    """Run both parts; return ``{"polynomial": ..., "landscapes": {tag: rows}, "figures": [...]}``."""
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    select_device(args.device)
    poly = run_polynomial(epochs=30)
    figures = [] if args.no_plot else [plot_polynomial(poly, args.out)]
    landscapes = {}
    print("\nPart 2 - the optimizers of chapter 6 racing on 2-D landscapes")
    for tag, make in LANDSCAPES.items():
        landscape = make()
        epochs = min(landscape.epochs, 300) if args.quick else landscape.epochs
        rows = race(landscape, epochs)
        print_race(landscape, rows)
        landscapes[tag] = rows
        if not args.no_plot:
            figures.append(plot_race(landscape, rows, args.out, tag))
    return {"polynomial": poly, "landscapes": landscapes, "figures": figures}


if __name__ == "__main__":
    main()
