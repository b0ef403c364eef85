# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""A file a module owns the whole content of: compare, (validate,) replace atomically, report a diff.

Runs on the target host: standard library only, no Ansible import, so it is tested on real files.
The file is replaced in one rename, so a service reading it never sees half a file, and it keeps
the mode and owner the live file had; the module's owner/group/mode options are applied after.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def read_text(path: str) -> str | None:
    """The current content of ``path``, or None when it does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _default_new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _candidate(path: str, content: str, new_file_mode: int | None):
    """A complete copy of the new file next to ``path``, removed on exit unless it was moved in place."""
    directory = os.path.dirname(os.path.abspath(path))
    # Dot-prefixed with a .tmp suffix: outside the globs services load (*.json, *.rules.yml).
    handle, candidate = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            live = os.stat(path)
        except FileNotFoundError:
            os.chmod(candidate, _default_new_file_mode() if new_file_mode is None else new_file_mode)
        else:
            os.chmod(candidate, live.st_mode & 0o7777)
            # Unprivileged runs keep their own ownership; the module's owner/group options apply after.
            with contextlib.suppress(PermissionError):
                os.chown(candidate, live.st_uid, live.st_gid)
        yield candidate
    finally:
        if os.path.exists(candidate):
            os.unlink(candidate)


def write_atomically(path: str, content: str, new_file_mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` in one rename.

    An existing file keeps its mode and owner; a new one gets ``new_file_mode``, or the umask's default.
    """
    with _candidate(path, content, new_file_mode) as candidate:
        os.replace(candidate, path)


def ensure_file(path, desired, check_mode, validate=None, new_file_mode=None, diff_view=None) -> dict:
    """Make ``path`` hold ``desired`` (None: make it absent); returns ``{"changed", "diff"}``.

    Writes only when the content differs and not in check mode. ``validate(candidate_path)`` is
    given the complete new file, next to the live one, before it replaces it, and raises to keep
    the live file; it runs in check mode too, so a dry run reports a file that would be rejected.
    ``diff_view`` turns file text into what the diff may show (to mask secrets).
    """
    current = read_text(path)
    changed = current != desired
    if changed and desired is None:
        if not check_mode:
            os.unlink(path)
    elif changed and (validate is not None or not check_mode):
        with _candidate(path, desired, new_file_mode) as candidate:
            if validate is not None:
                validate(candidate)
            if not check_mode:
                os.replace(candidate, path)
    view = diff_view or (lambda text: text)
    return {
        "changed": changed,
        "diff": {
            "before": view(current) if current is not None else "",
            "after": view(desired) if desired is not None else "",
            "before_header": path if current is not None else "(absent)",
            "after_header": path if desired is not None else "(absent)",
        },
    }
