"""`coalition --pack-path DIR …`: packs used from their folders, without `pip install` (coalition.domain.pack_paths).

The folders are added to COALITION_PACK_PATH, so the command and any process it starts find the same packs; each is
checked now, so a missing folder, a broken module or a name clash is one line before the command does anything."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from coalition.cli.common import fail
from coalition.domain import PackError, catalog
from coalition.domain.pack_paths import PACK_PATH_VARIABLE, pack_path


def use_pack_path(folders: Sequence[Path]) -> None:
    """Put the folders after those COALITION_PACK_PATH already names and load the catalog with them; exit 2 with
    one line when one cannot be used."""
    known = [str(p) for p in pack_path()]
    added = [str(folder.absolute()) for folder in folders]
    os.environ[PACK_PATH_VARIABLE] = os.pathsep.join(dict.fromkeys([*known, *added]))
    catalog.cache_clear()
    try:
        catalog()
    except PackError as exc:
        fail(str(exc))
