"""coalition.domain: the pack contract. What a domain pack declares (actions with their one argument schema,
agents, world, gates, default policy, scenario library) and how installed packs are found.

The core reads business vocabulary only through these declarations; it never imports a pack. A pack is a Python
package that exposes a `Pack` value through the `coalition.packs` entry point group (see docs/packs.md)."""

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
