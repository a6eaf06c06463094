"""Every file derive writes goes through here: the destination is checked
first, then the file is written whole or not at all.

:func:`check_file` and :func:`check_folder` look at an ``--out`` before any
expensive work (deriving, building a PDF) and refuse, as ``UserError(PATH,
WHAT)``, a destination that cannot work: an existing folder where a file is
wanted, a file in the way of a folder, a name longer than the file system
allows, a folder without write permission, a system folder (``/proc``,
``/sys``, ``/dev``), something that is not a regular file.  :func:`write`
writes to a temporary file beside the destination and renames it into place
(the atomic replace), so an earlier good output is never half-overwritten;
an ``OSError`` on the way is turned into the same one-line error.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write(d / "a.txt", "hello")
>>> (d / "a.txt").read_text()
'hello'
>>> check_file(d)
Traceback (most recent call last):
...
derive.errors.UserError: ...: is a folder; give a file name
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from derive.errors import UserError

#: folders of the kernel: writing there is never what a user means
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _first_existing(path: Path) -> Path:
    """The deepest part of ``path`` (as the user wrote it) that exists."""
    p = path
    while not os.path.lexists(p):
        if p.parent == p:
            break
        p = p.parent
    return p


def _check_common(path: Path, label: str) -> None:
    where = label
    text = str(path)
    if not text or "\x00" in text:
        raise UserError(where, "not a usable path")
    if len(os.fsencode(text)) > 4000:
        raise UserError(where, "the path is longer than 4000 bytes")
    absolute = Path(os.path.abspath(text))
    real = os.path.realpath(absolute)
    for system in SYSTEM_FOLDERS:
        if real == system or real.startswith(system + "/"):
            raise UserError(where, f"is inside {system}, a system folder; choose another place")
    existing = _first_existing(path)
    limit = _name_max(existing if existing.is_dir() else existing.parent)
    for part in absolute.parts:
        if len(os.fsencode(part)) > limit:
            raise UserError(where, f"a name in the path is longer than {limit} bytes")
    # below the deepest existing part, everything is made: that part must be
    # a folder we may write into
    if existing != path and not existing.is_dir():
        raise UserError(where, f"{existing} is a file, not a folder")
    holder = existing if existing != path else path.parent
    if holder.is_dir() and not os.access(holder, os.W_OK | os.X_OK):
        raise UserError(where, f"no permission to write in {holder}")


def check_file(path, label: str | None = None) -> Path:
    """Refuse a file destination that cannot be written (see the module)."""
    path = Path(path)
    label = label or str(path)
    _check_common(path, label)
    if os.path.lexists(path):
        st = os.stat(path) if path.exists() else os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            raise UserError(label, "is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise UserError(label, "is not a regular file (a device, pipe or socket); give a file name")
    return path


def check_folder(path, label: str | None = None) -> Path:
    """Refuse a folder destination that cannot be made or written into."""
    path = Path(path)
    label = label or str(path)
    _check_common(path, label)
    if os.path.lexists(path):
        if not path.is_dir():
            raise UserError(label, "is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(label, "no permission to write in this folder")
    return path


def _refusal(path: Path, exc: OSError) -> UserError:
    what = {errno.EISDIR: "is a folder; give a file name", errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.ENAMETOOLONG: "the name is too long", errno.EACCES: "no permission to write here",
            errno.EPERM: "no permission to write here", errno.EROFS: "the file system is read-only",
            errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno, f"cannot write ({exc.strerror or type(exc).__name__})")
    return UserError(str(path), what)


def write(path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all, making
    its folder if needed; the file gets the usual permissions (umask)."""
    path = Path(path)
    check_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    except OSError as exc:
        raise _refusal(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp's 0600 is not what a user expects
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _refusal(path, exc) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["check_file", "check_folder", "write"]
