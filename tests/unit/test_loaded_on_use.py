"""A pack's table declared LoadedOnUse is the named mapping, imported on its first read and not before."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coalition.domain import LoadedOnUse, PackError, load_pack

pytestmark = pytest.mark.unit


def test_reads_as_the_mapping_it_names() -> None:
    from coalition.packs.helios.observation_models import DATA_MODELS

    world = load_pack("helios").world
    assert world is not None
    assert dict(world.data_models) == DATA_MODELS
    assert "dispute" in world.lenient_parts
    assert world.lenient_parts["dispute"][0] == "facts"
    assert world.data_models.get("no.such.kind") is None
    assert len(world.data_models) == len(DATA_MODELS)


def test_nothing_is_imported_before_the_first_read() -> None:
    probe = (
        "import sys\n"
        "from coalition.domain import load_pack\n"
        "world = load_pack('helios').world\n"
        "before = 'coalition.packs.helios.observation_models' in sys.modules\n"
        "world.data_models.get('dispute')\n"
        "after = 'coalition.packs.helios.observation_models' in sys.modules\n"
        "print(f'RESULT {before} {after} {world.data_models!r}')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == (
        "RESULT False True LoadedOnUse('coalition.packs.helios.observation_models:DATA_MODELS')"
    )


def test_a_target_that_is_not_a_mapping_is_named() -> None:
    with pytest.raises(ValueError, match=r"package\.module:NAME"):
        LoadedOnUse("coalition.packs.helios.observation_models")
    table: LoadedOnUse[str, object] = LoadedOnUse("coalition.packs.helios.observations:GENERATED")
    with pytest.raises(PackError, match="GENERATED is a frozenset, not a mapping"):
        table.get("x")
