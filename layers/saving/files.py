"""Writing a file atomically: a temporary file beside the destination, renamed over it when complete.

Checkpoints and ONNX exports both go through :func:`write_atomically`, so an
interrupted or failed write never leaves a partial file at the destination;
temporaries left by a crashed writer of the same file are removed by the next write.
"""

from __future__ import annotations

import glob
import os
import tempfile


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete ``.<base>.<pid>.*.tmp`` files whose writing process no longer exists (a crashed save)."""
    for tmp in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(base)}.*.tmp")):
        parts = os.path.basename(tmp)[len(base) + 2:].split(".")
        try:
            pid = int(parts[0])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        except OSError:  # exists but not ours (EPERM): leave it
            pass


def check_directory(path, where: str) -> str:
    """``path`` as a string after checking its directory exists (FileNotFoundError naming both otherwise)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{where}: directory {directory!r} does not exist (path {path!r})")
    return path


def write_atomically(path: str, write) -> str:
    """Call ``write(file)`` on a temporary binary file beside ``path``, then rename it to ``path``; return ``path``.

    The file is synced before the rename and gets mode 0o644; on any error the
    temporary is removed and the destination is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _remove_stale_temporaries(directory, base)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
