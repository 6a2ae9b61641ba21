"""Settings from the environment (COALITION_*, REDIS_URL) and an optional .env file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coalition.bus.redaction import secrets_in

AGENT_MODEL_VARIABLES = tuple(
    f"COALITION_LLM_{agent.upper()}" for agent in ("research", "finance", "marketing", "legal", "ops")
)


LLM_LIMIT_VARIABLES = ("COALITION_LLM_TIMEOUT", "COALITION_LLM_MAX_ANSWER_CHARS")


def unknown_agent_models(names: Iterable[str]) -> list[str]:
    """Variables named like COALITION_LLM_<AGENT> for an agent that does not exist (COALITION_LLM_CFO): a typo
    that would otherwise leave that agent on the default model without a word."""
    known = (*AGENT_MODEL_VARIABLES, *LLM_LIMIT_VARIABLES)
    return [n for n in names if n.upper().startswith("COALITION_LLM_") and n.upper() not in known]


class Settings(BaseSettings):
    """Everything a run can be configured with; each field documents its variable."""

    model_config = SettingsConfigDict(env_prefix="COALITION_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".coalition"), description="COALITION_DATA_DIR: ledgers, runs, embedded Redis")
    redis_url: str | None = Field(  # type: ignore[pydantic-alias]  # REDIS_URL is the conventional name
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "COALITION_REDIS_URL"),
        description="REDIS_URL: use this Redis server; unset = start a private embedded redis-server",
    )
    ledger: str | None = Field(
        default=None,
        description="COALITION_LEDGER: a SQLite file, or postgresql://user@host/db?schema=NAME; unset = ledger.db"
        " under the data directory",
    )
    bus: Literal["memory", "redis"] = Field(default="redis", description="COALITION_BUS: memory or redis")
    llm: str = Field(default="offline", description="COALITION_LLM: offline | openai:<model> | anthropic:<model>")
    llm_research: str | None = Field(default=None, description="COALITION_LLM_RESEARCH: research's model")
    llm_finance: str | None = Field(default=None, description="COALITION_LLM_FINANCE: finance's model")
    llm_marketing: str | None = Field(default=None, description="COALITION_LLM_MARKETING: marketing's model")
    llm_legal: str | None = Field(default=None, description="COALITION_LLM_LEGAL: legal's model")
    llm_ops: str | None = Field(default=None, description="COALITION_LLM_OPS: ops's model")
    llm_timeout: float = Field(
        default=30.0, gt=0, le=600, description="COALITION_LLM_TIMEOUT: seconds a model call may take, retries included"
    )
    llm_max_answer_chars: int = Field(
        default=20_000, ge=100, le=1_000_000, description="COALITION_LLM_MAX_ANSWER_CHARS: longest answer used"
    )
    prices: Path | None = Field(default=None, description="COALITION_PRICES: a YAML price table (USD per M tokens)")
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY", repr=False)
    anthropic_api_key: str | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY", repr=False)
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    witness_dir: Path | None = Field(
        default=None,
        description="COALITION_WITNESS_DIR: append-only store of signed ledger checkpoints (default data_dir/witness)",
    )
    state_dir: Path | None = Field(
        default=None,
        description="COALITION_STATE_DIR: what this user's CLI and console remember (the newest checkpoint seen per"
        " ledger); default $XDG_STATE_HOME/coalition or ~/.local/state/coalition",
    )
    agent_graph: Literal["straight", "langgraph"] = Field(
        default="straight",
        description="COALITION_AGENT_GRAPH: how a pack agent's fixed step runs: straight (its nodes in order) or"
        " langgraph (the compiled graph, for LangGraph's tracing and callbacks on every step); same ledger either way",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="warning", description="COALITION_LOG_LEVEL"
    )
    log_format: Literal["auto", "json", "console"] = Field(default="auto", description="COALITION_LOG_FORMAT")

    @field_validator("llm", "llm_research", "llm_finance", "llm_marketing", "llm_legal", "llm_ops")
    @classmethod
    def _llm_choice(cls, value: str | None) -> str | None:
        if value is None or value == "offline":
            return value
        provider, _, name = value.partition(":")
        if provider in {"openai", "anthropic"} and name:
            return value
        raise ValueError("must be 'offline', 'openai:<model>' or 'anthropic:<model>'")

    @field_validator("agent_graph", mode="before")
    @classmethod
    def _agent_graph(cls, value: object) -> object:
        """Set but empty (COALITION_AGENT_GRAPH=) is the default, as coalition.agents.pipeline reads it."""
        return "straight" if value == "" else value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith(("redis://", "rediss://", "unix://")):
            return value
        raise ValueError(f"must be a redis://, rediss:// or unix:// URL, not {value[:60]!r}")

    def per_agent_models(self) -> dict[str, str]:
        """COALITION_LLM_<AGENT> values that are set, by agent name."""
        chosen = {
            "research": self.llm_research,
            "finance": self.llm_finance,
            "marketing": self.llm_marketing,
            "legal": self.llm_legal,
            "ops": self.llm_ops,
        }
        return {agent: spec for agent, spec in chosen.items() if spec}

    def secrets(self) -> dict[str, str]:
        """The secrets these settings hold (from the environment or .env), by variable: the API keys and the
        password of any URL — what every writer redacts (coalition.bus.redaction)."""
        return secrets_in(
            {
                "OPENAI_API_KEY": self.openai_api_key,
                "ANTHROPIC_API_KEY": self.anthropic_api_key,
                "REDIS_URL": self.redis_url,
                "COALITION_LEDGER": self.ledger,
                "OPENAI_BASE_URL": self.openai_base_url,
                "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            }
        )

    @property
    def ledger_path(self) -> Path:
        """The SQLite ledger file: COALITION_LEDGER when it is a path, else ledger.db in the data directory."""
        if self.ledger and not self.ledger.startswith(("postgresql:", "postgres:")):
            return Path(self.ledger)
        return self.data_dir / "ledger.db"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys"

    @property
    def witness_path(self) -> Path:
        return self.witness_dir or self.data_dir / "witness"

    @property
    def state_path(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        xdg = os.environ.get("XDG_STATE_HOME")
        return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "coalition"
