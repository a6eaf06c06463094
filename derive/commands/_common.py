"""Helpers shared by the commands: loading targets and values, writing files."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import UserError, as_user_error, in_file
from ..parse import ExprError, number
from ..spec import SpecError, read_file


def load_target(target: str):
    """A built-in or a spec file; input errors name the file."""
    from ..problems import load

    try:
        return load(target)
    except Exception as exc:  # noqa: BLE001
        if as_user_error(exc) is None:
            raise
        if target.endswith((".yaml", ".yml", ".json")):
            raise in_file(target, exc) from None
        raise as_user_error(exc) from None


def parse_set(items) -> dict:
    """``--set NAME=VALUE`` items (VALUE a number or a JSON list)."""
    out = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError("--set", f"expected NAME=VALUE, got {item!r}")
        raw = raw.strip()
        if raw.startswith("["):
            try:
                out[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UserError(f"--set {name}", f"not a JSON list ({exc.msg})") from None
        else:
            try:
                number(raw)
            except ExprError as exc:
                raise UserError(f"--set {name}", str(exc)) from None
            out[name] = raw
    return out


def read_values(path: str | None, sets) -> dict:
    """The ``--values`` file merged with ``--set`` overrides."""
    values: dict = {}
    if path:
        from ..matspec import DEFAULT_MAX_MEMORY
        from ..msolution import LIMITS
        limit = LIMITS["max_memory"] or DEFAULT_MAX_MEMORY    # large problems take their numbers from here
        try:
            data = read_file(path, limit, " (limit --max-memory)")
        except SpecError as exc:
            raise in_file(path, exc) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(path, "a values file must be a mapping of names to numbers or lists")
        values.update(data)
    values.update(parse_set(sets))
    return values


def write_atomic(path, data, binary: bool = False) -> None:
    """Write a file whole or not at all (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary files
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def emit(text: str, out: str | None) -> None:
    """Print, or write to --out."""
    if out:
        write_atomic(out, text if text.endswith("\n") else text + "\n")
    else:
        print(text)
