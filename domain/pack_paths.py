"""Packs loaded from a directory rather than installed: `coalition --pack-path DIR …` or COALITION_PACK_PATH (several
directories separated by the platform's path separator, `:` on Linux). A pack being written is used as it is, with
no `pip install`.

DIR is either

- a pack's project, as `coalition pack new` writes it: its `pyproject.toml` names the pack in the `coalition.packs`
  entry point group (`tea_shop = "tea_shop:PACK"`), the package beside it (or under `src/`); or
- the pack's package itself (a folder with `__init__.py` whose `PACK` is the Pack).

Every problem is one PackError line naming the directory: a directory that is missing or holds no pack, a module
that cannot be imported (with the error's first line), a module name that Python already finds elsewhere (the
pack's package would be shadowed, or would shadow it), and — checked by the catalog — a pack name an installed
pack already uses.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from coalition.domain.errors import PackError
from coalition.domain.pack import Pack

PACK_PATH_VARIABLE = "COALITION_PACK_PATH"
ENTRY_POINT_GROUP = "coalition.packs"  # where installed packs are found (coalition.domain.catalog)


def pack_path() -> list[Path]:
    """The directories COALITION_PACK_PATH names, in order (empty entries ignored)."""
    value = os.environ.get(PACK_PATH_VARIABLE, "")
    return [Path(part) for part in value.split(os.pathsep) if part.strip()]


def _entry_points(project: Path) -> dict[str, str]:
    """The `coalition.packs` entry points a project's pyproject.toml declares (name → "module:attribute")."""
    where = project / "pyproject.toml"
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PackError(str(project), f"cannot read {where.name} ({type(exc).__name__}: {_line(exc)})") from None
    points = data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not isinstance(points, dict) or not points:
        raise PackError(str(project), f'{where.name} names no [project.entry-points."{ENTRY_POINT_GROUP}"]')
    return {str(name): str(value) for name, value in points.items()}


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


def _root(project: Path, module: str) -> Path:
    """Where the project's top-level package lives: beside pyproject.toml, or under src/."""
    top = module.partition(".")[0]
    for root in (project, project / "src"):
        if (root / top).is_dir() or (root / f"{top}.py").is_file():
            return root
    raise PackError(str(project), f"has no package {top!r} (looked in {project.name}/ and {project.name}/src/)")


def _origin(module: str) -> Path | None:
    """Where Python takes a top-level module from now (already imported, or found on sys.path), if anywhere."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        where = getattr(loaded, "__file__", None)
    else:
        found = importlib.util.find_spec(module)
        where = found.origin if found is not None else None
    return Path(where).resolve() if where else None


def _clash(directory: Path, name: str, taken: Mapping[str, str]) -> None:
    if name in taken:
        raise PackError(name, f"from {directory}: clashes with {taken[name]} of that name")


def _load(directory: Path, root: Path, ref: str, name: str | None, taken: Mapping[str, str]) -> Pack:
    if name is not None:
        _clash(directory, name, taken)  # before importing: an installed pack's module may have that name too
    module_name, _, attribute = ref.partition(":")
    top = module_name.partition(".")[0]
    origin = _origin(top)
    if origin is not None and root.resolve() not in origin.parents:
        raise PackError(
            name or str(directory),
            f"from {directory}: its module {top!r} clashes with the module Python already finds at {origin}",
        )
    if str(root) not in sys.path:
        sys.path.append(str(root))
    try:
        module = importlib.import_module(module_name)
        loaded = getattr(module, attribute) if attribute else None
    except Exception as exc:  # a broken pack is one line naming it, not a traceback
        raise PackError(
            name or str(directory), f"from {directory}: cannot load {ref} ({type(exc).__name__}: {_line(exc)})"
        ) from None
    if not isinstance(loaded, Pack):
        raise PackError(name or str(directory), f"from {directory}: {ref} is a {type(loaded).__name__}, not a Pack")
    if name is not None and loaded.name != name:
        raise PackError(name, f"from {directory}: {ref} holds the pack named {loaded.name!r}")
    _clash(directory, loaded.name, taken)
    return loaded


def packs_from_path(directory: Path, taken: Mapping[str, str]) -> list[Pack]:
    """The packs one directory holds (see the module's docstring); PackError (one line) otherwise, or when one's
    name is in `taken` (pack name → what already holds it, e.g. "the installed pack")."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "no such directory"
        raise PackError(str(directory), f"{what} (from --pack-path or {PACK_PATH_VARIABLE})")
    directory = directory.absolute()
    if (directory / "pyproject.toml").is_file():
        points = _entry_points(directory)
        return [
            _load(directory, _root(directory, ref.partition(":")[0]), ref, name, taken)
            for name, ref in sorted(points.items())
        ]
    if (directory / "__init__.py").is_file():
        return [_load(directory, directory.parent, f"{directory.name}:PACK", None, taken)]
    raise PackError(
        str(directory),
        "holds no pack: neither a project whose pyproject.toml names a coalition.packs entry point nor a package "
        "(__init__.py) with PACK",
    )
