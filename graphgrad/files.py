"""Reading users' files, bounded: regular files only, at most a given size.

A FIFO, a device (``/dev/zero``), a directory or a socket given as a model or inputs file is
refused before it is opened (reading it would block, never end, or fail), and the read stops after
the limit, so no file can make graphgrad hang or fill the memory.
"""

from __future__ import annotations

import os
import stat

from .errors import GraphgradError, InputError

MiB = 1 << 20


def mib_text(n: int) -> str:
    return f"{n / MiB:.3g} MiB"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike, what: str, hint: str,
                  error: type[GraphgradError] = InputError) -> os.stat_result:
    """``os.stat`` of ``path``, which must exist and be a regular file (not a directory, FIFO,
    device or socket: reading those fails, blocks or never ends); an :class:`InputError` if not."""
    name = os.fsdecode(path)
    if not name:
        raise error(f"the {what} path is empty", hint=hint)
    try:
        st = os.stat(name)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise error(f"cannot read {what} {name!r}: {why}", hint=hint) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {name!r} is {_kind(st.st_mode)}, not a regular file", hint=hint)
    return st


def read_file(path: str | os.PathLike, what: str, limit: int, hint: str,
              error: type[GraphgradError] = InputError) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, or an :class:`InputError`
    naming ``what`` the file is (``"model file"``) and, in ``hint``, what to pass instead.

    Directories, FIFOs, devices and sockets are refused before they are opened, and again on the
    opened file (opened non-blocking, so a path swapped for a FIFO in between cannot block); the
    read itself stops after ``limit + 1`` bytes.
    """
    name = os.fsdecode(path)
    st = check_regular(name, what, hint, error)
    too_big = f"give a {what} of at most {mib_text(limit)}"
    if st.st_size > limit:
        raise error(f"{what} {name!r} is {mib_text(st.st_size)}, over the limit of {mib_text(limit)}", hint=too_big)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
        with os.fdopen(fd, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):  # swapped after the first look
                raise error(f"{what} {name!r} is {_kind(st.st_mode)}, not a regular file", hint=hint)
            chunks, left = [], limit + 1
            while left > 0:
                b = f.read(min(left, 1 << 20))
                if not b:
                    break
                chunks.append(b)
                left -= len(b)
    except OSError as e:
        raise error(f"cannot read {what} {name!r}: {e.strerror or e}", hint=hint) from None
    data = b"".join(chunks)
    if len(data) > limit:  # it grew after the stat
        raise error(f"{what} {name!r} is over the limit of {mib_text(limit)}", hint=too_big)
    return data
