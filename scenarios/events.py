"""Observations as the world emits them: each with the evidence id agents cite (a pack's WorldDecl.open_day turns
its scenario day into them)."""

from __future__ import annotations

from typing import Any

from coalition.bus.canonical import content_hash
from coalition.bus.messages import Observation
from coalition.scenarios.spec import ScheduledEvent, observation_kinds


def make_observation(
    kind: str, *, subject: str = "", to: list[str] | None = None, data: dict[str, Any], text: str | None = None
) -> Observation:
    """An observation with its evidence id = content_hash({kind, subject, data, text}) (docs/design.md)."""
    recipients = list(to) if to is not None else list(observation_kinds()[kind])
    evidence_id = content_hash({"kind": kind, "subject": subject, "data": data, "text": text})
    return Observation(kind=kind, subject=subject, to=recipients, data=data, text=text, evidence_id=evidence_id)


def event_observation(event: ScheduledEvent, data: dict[str, Any] | None = None) -> Observation:
    """A scheduled event as an observation for its recipients (`data`: the event's data as the world completed
    it, else as written); an event carrying a prose document has the document's text and what it is."""
    data = dict(event.data) if data is None else data
    document = event.document
    if document is None:
        return make_observation(event.kind, subject=event.subject, to=event.recipients, data=data, text=event.text)
    observation = make_observation(
        event.kind, subject=event.subject, to=event.recipients, data=data, text=document.text
    )
    about = {"kind": document.kind, "title": document.title, "sender": document.sender}
    return observation.model_copy(update={"document": about})
