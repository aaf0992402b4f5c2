"""The benchmark command line: ``python -m bench <command> [options]`` or ``camadas-bench <command>``.

Each command is a module ``bench.<command>`` exposing

* ``add_arguments(parser)``: adds the command's options to its sub-parser;
* ``run(args) -> int``: runs it and returns the exit status.

Modules are imported lazily, only for the command chosen, so a module that
is missing or fails to import breaks that command alone, with a message that
says which module and why (exit status 2); the others keep working.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

#: command name -> (module, one-line help)
COMMANDS = {
    "activations": (
        "bench.activations",
        "activations forward/backward on CPU and GPU vs copy roofline, book NumPy code, PyTorch (book 7.6, 7.9, 8.7)",
    ),
    "kernels": ("bench.kernels", "convolution and pooling kernels vs the book's loops and rooflines"),
    "training": ("bench.training", "end-to-end training throughput of small networks"),
    "optimizers": ("bench.optimizers", "fused optimizers vs the 0.1 formulas and PyTorch: Adam step, MLP step"),
    "contention": ("bench.contention", "slowdown of a conv and an MLP step beside one busy process, ours and PyTorch"),
    "device-check": ("bench.device_check", "every GPU check at once (tests, cuDNN, benchmarks, digits CNN) into one "
                                           "folder; the CPU half where no GPU answers"),
    "attention": ("bench.attention", "multi-head attention and a Transformer block vs PyTorch (book ch. 26)"),
    "recurrent": ("bench.recurrent", "RNN/LSTM/GRU speed vs PyTorch and the book's loops; the short-term memory "
                                     "problem (book 24.5)"),
    "scaling": ("bench.scaling", "data-parallel training at 1, 2, ... MPI processes: samples/s, all-reduce share, "
                                 "projected scaling to 8 GPUs and 2-4 nodes"),
    "models": ("bench.models", "whole models trained by fit vs a PyTorch twin (digits CNN, MLPs), GEMM floors, "
                               "per-call overhead of a layer"),
}

PROG = "camadas-bench"


class CommandUnavailableError(RuntimeError):
    """The module implementing a command is missing or failed to import."""


def load_command(name: str):
    """Import the module of command ``name`` and check its interface.

    Raises
    ------
    CommandUnavailableError
        The module does not import, or lacks ``add_arguments`` / ``run``.
    """
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise CommandUnavailableError(f"module {module_name} does not exist yet") from exc
        raise CommandUnavailableError(
            f"module {module_name} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise CommandUnavailableError(f"module {module_name} failed to import: {detail}") from exc
    missing = [attr for attr in ("add_arguments", "run") if not callable(getattr(module, attr, None))]
    if missing:
        raise CommandUnavailableError(f"module {module_name} lacks {', '.join(missing)}()")
    return module


def _selected_command(argv) -> str | None:
    """The first argument that names a command (options before it are top-level)."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the ``selected`` command's module is imported.

    Raises
    ------
    CommandUnavailableError
        The selected command's module cannot be loaded.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="camadas benchmarks (also: python -m bench). Choose a command; '<command> -h' lists its options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name, (_, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = load_command(name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Run the benchmark command line and return its exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 2 for a usage error or a command whose module is
        unavailable; otherwise the command's own status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = _selected_command(argv)
    try:
        parser = build_parser(selected)
    except CommandUnavailableError as exc:
        print(f"{PROG} {selected}: command unavailable: {exc}", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on -h and on usage errors
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    args._argv = [selected] + argv[argv.index(selected) + 1:] if selected else argv
    status = args._run(args)
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
