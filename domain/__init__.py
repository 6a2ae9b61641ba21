"""coalition.domain: the pack contract. What a domain pack declares (actions with their one argument schema,
agents, world, gates, default policy, scenario library) and how installed packs are found.

The core reads business vocabulary only through these declarations; it never imports a pack. A pack is a Python
package that exposes a `Pack` value through the `coalition.packs` entry point group (see docs/packs.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
    from coalition.domain.actions import Action, ActionContext, Changes, Handler, Learn
    from coalition.domain.arguments import (
        ActionArgs,
        Flag,
        Integer,
        IsoDate,
        Money,
        Number,
        Text,
        Texts,
        argument_problem,
        parse_args,
    )
    from coalition.domain.catalog import DEFAULT_PACK, Catalog, catalog, installed_packs, load_pack
    from coalition.domain.errors import ActionRefused, ArgumentProblem, DomainError, PackError, SectionProblem
    from coalition.domain.loaded_on_use import LoadedOnUse
    from coalition.domain.pack import AgentDecl, GovernanceDecl, Pack, Voice, WorldDecl, WorldPort
    from coalition.domain.reporting import (
        Board,
        Chart,
        CustomerTexts,
        Kpi,
        Line,
        Panel,
        ProposalMarks,
        Reporting,
        Statements,
    )

_LAZY: dict[str, str] = {
    "Action": "coalition.domain.actions",
    "ActionArgs": "coalition.domain.arguments",
    "ActionContext": "coalition.domain.actions",
    "ActionRefused": "coalition.domain.errors",
    "AgentDecl": "coalition.domain.pack",
    "ArgumentProblem": "coalition.domain.errors",
    "Board": "coalition.domain.reporting",
    "Catalog": "coalition.domain.catalog",
    "Changes": "coalition.domain.actions",
    "Chart": "coalition.domain.reporting",
    "CustomerTexts": "coalition.domain.reporting",
    "DEFAULT_PACK": "coalition.domain.catalog",
    "DomainError": "coalition.domain.errors",
    "Flag": "coalition.domain.arguments",
    "GovernanceDecl": "coalition.domain.pack",
    "LoadedOnUse": "coalition.domain.loaded_on_use",
    "Handler": "coalition.domain.actions",
    "Integer": "coalition.domain.arguments",
    "IsoDate": "coalition.domain.arguments",
    "Kpi": "coalition.domain.reporting",
    "Learn": "coalition.domain.actions",
    "Line": "coalition.domain.reporting",
    "Money": "coalition.domain.arguments",
    "Number": "coalition.domain.arguments",
    "Pack": "coalition.domain.pack",
    "PackError": "coalition.domain.errors",
    "Panel": "coalition.domain.reporting",
    "ProposalMarks": "coalition.domain.reporting",
    "Reporting": "coalition.domain.reporting",
    "SectionProblem": "coalition.domain.errors",
    "Statements": "coalition.domain.reporting",
    "Text": "coalition.domain.arguments",
    "Texts": "coalition.domain.arguments",
    "Voice": "coalition.domain.pack",
    "WorldDecl": "coalition.domain.pack",
    "WorldPort": "coalition.domain.pack",
    "argument_problem": "coalition.domain.arguments",
    "catalog": "coalition.domain.catalog",
    "installed_packs": "coalition.domain.catalog",
    "load_pack": "coalition.domain.catalog",
    "parse_args": "coalition.domain.arguments",
}
lazy_package(__name__, _LAZY)

__all__ = [
    "DEFAULT_PACK",
    "Action",
    "ActionArgs",
    "ActionContext",
    "ActionRefused",
    "AgentDecl",
    "ArgumentProblem",
    "Board",
    "Catalog",
    "Changes",
    "Chart",
    "CustomerTexts",
    "DomainError",
    "Flag",
    "GovernanceDecl",
    "Handler",
    "Integer",
    "IsoDate",
    "Kpi",
    "Learn",
    "Line",
    "LoadedOnUse",
    "Money",
    "Number",
    "Pack",
    "PackError",
    "Panel",
    "ProposalMarks",
    "Reporting",
    "SectionProblem",
    "Statements",
    "Text",
    "Texts",
    "Voice",
    "WorldDecl",
    "WorldPort",
    "argument_problem",
    "catalog",
    "installed_packs",
    "load_pack",
    "parse_args",
]
