"""Settings from the environment (COALITION_*, REDIS_URL) and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a run can be configured with; each field documents its variable."""

    model_config = SettingsConfigDict(env_prefix="COALITION_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".coalition"), description="COALITION_DATA_DIR: ledgers, runs, embedded Redis")
    redis_url: str | None = Field(  # type: ignore[pydantic-alias]  # REDIS_URL is the conventional name
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "COALITION_REDIS_URL"),
        description="REDIS_URL: use this Redis server; unset = start a private embedded redis-server",
    )
    bus: Literal["memory", "redis"] = Field(default="redis", description="COALITION_BUS: memory or redis")
    llm: str = Field(default="offline", description="COALITION_LLM: offline | openai:<model> | anthropic:<model>")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="warning", description="COALITION_LOG_LEVEL"
    )
    log_format: Literal["auto", "json", "console"] = Field(default="auto", description="COALITION_LOG_FORMAT")

    @field_validator("llm")
    @classmethod
    def _llm_choice(cls, value: str) -> str:
        if value == "offline" or (value.split(":", 1)[0] in {"openai", "anthropic"} and ":" in value):
            return value
        raise ValueError("must be 'offline', 'openai:<model>' or 'anthropic:<model>'")

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.db"
