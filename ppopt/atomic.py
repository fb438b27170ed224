"""Atomic output files: write to a temporary file in the target's directory, then rename;
and reading an input file's text with one-line errors (:func:`read_input_text`).

A reader (or a user after Ctrl-C) sees either the old file or the complete new one, never a
half-written file: :func:`os.replace` is atomic within one file system, which is why the
temporary file lives in the same directory as the target.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ppopt.errors import PpoptError


def _current_umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permission bits a file created with ``open()`` would get; ``mkstemp`` would give 0600.
_FILE_MODE = 0o666 & ~_current_umask()


def write_target(path: str | os.PathLike[str]) -> Path:
    """Where writing ``path`` really goes: through a symbolic link to the file it names (the
    link stays a link), else ``path`` itself."""
    target = Path(path)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def is_special(path: Path) -> bool:
    """True for an existing FIFO, device node or socket (``/dev/null``, ``/dev/stdout``):
    a stream written in place, never replaced by a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps the target's extension, so writers that choose a format from the
    extension (matplotlib) behave as for the real name. On any exception the temporary file is
    removed and the target is left untouched. A symbolic link is written through (its target
    is replaced, the link kept); a FIFO or device node is written in place, as a stream.
    """
    target = write_target(path)
    if is_special(target):
        yield target
        return
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(
        dir=directory, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _FILE_MODE)
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (the old content stays until the rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def read_input_text(path: Path, error: type[PpoptError], what: str = "") -> str:
    """The UTF-8 text of an input file; a missing or unreadable file is one ``error`` line
    naming the path (``what`` names the kind of file: ``profile``)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what + ' ' if what else ''}file not found") from None
    except (OSError, UnicodeDecodeError) as failure:
        reason = failure.strerror if isinstance(failure, OSError) else "not UTF-8 text"
        kind = f" the {what}" if what else ""
        raise error(f"{path}: cannot read{kind}: {reason or failure}") from None
