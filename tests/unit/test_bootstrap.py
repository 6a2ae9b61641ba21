"""The composition root's choices: which bus, described for people without secrets."""

from __future__ import annotations

import pytest

from coalition.bootstrap import BusChoice, without_credentials
from coalition.settings import Settings

pytestmark = pytest.mark.unit


class TestBusChoice:
    """--bus and REDIS_URL pick the bus; descriptions never show a password."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:s3cret@db.internal:6380/2", "redis://db.internal:6380/2"),
            ("redis://user:s3cret@db.internal/0", "redis://db.internal/0"),
            ("rediss://default:s3cret@[::1]:6379", "rediss://[::1]:6379"),
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("unix:///tmp/redis.sock?db=0", "unix:///tmp/redis.sock?db=0"),
        ],
    )
    def test_credentials_are_removed(self, url: str, shown: str) -> None:
        assert without_credentials(url) == shown
        assert "s3cret" not in BusChoice("redis", url).describe()

    def test_choices(self) -> None:
        settings = Settings(redis_url=None, bus="redis")
        assert BusChoice.parse("memory", settings) == BusChoice("memory")
        assert BusChoice.parse(None, settings) == BusChoice("redis", None)
        assert BusChoice.parse("unix:///x.sock", settings) == BusChoice("redis", "unix:///x.sock")
        with pytest.raises(ValueError, match="--bus must be"):
            BusChoice.parse("kafka", settings)
