"""The chat model of each agent's choice (coalition.agents.model_choice), and the keys and endpoints that reach the
paid providers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from coalition.agents.errors import ModelConfigError
from coalition.agents.model_choice import ModelChoice, Provider
from coalition.agents.offline_model import OfflineChatModel

KEY_VARIABLES: dict[str, str] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
DEFAULT_MAX_TOKENS = 1024
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_ANSWER_CHARS = 20_000  # a rationale or customer message is a paragraph; a suggestion a small object
SLOW_CALL_S = 5.0
DEFAULT_SDK_RETRIES = 2


class ProviderAccess(BaseModel):
    """Keys and endpoints for the paid providers, read from the environment or .env by the caller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    openai_api_key: str | None = None
    anthropic_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S  # a whole call, the SDK's retries included (then a recorded stop)
    sdk_retries: int = DEFAULT_SDK_RETRIES  # transport-level retries (429 / 5xx) inside the official SDKs
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS  # a longer answer is a recorded stop, never stored
    slow_call_s: float = SLOW_CALL_S  # after this long, `on_slow_call` tells the operator a model is awaited
    on_slow_call: Callable[[str, str, float], None] | None = Field(default=None, exclude=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProviderAccess:
        return cls(
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
        )

    def key(self, provider: str) -> str | None:
        return {"openai": self.openai_api_key, "anthropic": self.anthropic_api_key}.get(provider)

    def base_url(self, provider: str) -> str | None:
        return {"openai": self.openai_base_url, "anthropic": self.anthropic_base_url}.get(provider)


def missing_keys(choices: Mapping[str, ModelChoice], access: ProviderAccess) -> list[str]:
    """One line per provider that is chosen but has no key (empty when every chosen provider can be reached)."""
    problems: list[str] = []
    for provider in ("openai", "anthropic"):
        users = sorted(a for a, c in choices.items() if c.provider == provider)
        if users and not access.key(provider):
            problems.append(
                f"{', '.join(users)} {'uses' if len(users) == 1 else 'use'} {provider} but {KEY_VARIABLES[provider]} "
                "is not set (export it or put it in .env, or choose offline)"
            )
    return problems


def model_parameters(provider: Provider) -> dict[str, Any]:
    """The sampling parameters we send: temperature 0 everywhere (both providers allow it), bounded output."""
    if provider == "offline":
        return {}
    return {"temperature": 0, "max_tokens": DEFAULT_MAX_TOKENS}


def make_model(choice: ModelChoice, access: ProviderAccess, *, seed: int = 0) -> BaseChatModel:
    """The chat model for a choice; a missing key is a ModelConfigError before any request is made."""
    if choice.provider == "offline":
        return OfflineChatModel(seed=seed)
    key = access.key(choice.provider)
    if not key:
        raise ModelConfigError(missing_keys({choice.agent: choice}, access)[0])
    # Imported here: the LangChain provider packages are only needed when a paid provider is chosen.
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {
        **model_parameters(choice.provider),
        "api_key": key,
        "timeout": access.timeout_s,
        "max_retries": access.sdk_retries,
    }
    base_url = access.base_url(choice.provider)
    if base_url:
        kwargs["base_url"] = base_url
    model = init_chat_model(choice.spec, **kwargs)
    assert isinstance(model, BaseChatModel)
    return model
