"""The action reference in docs/packs/ is generated from the packs' declarations (`coalition pack docs`): the
committed files must be exactly what the declarations generate, and each row must say what the declaration says."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field
from typer.testing import CliRunner

from coalition.cli.pack_cmd import pack_app
from coalition.cli.pack_docs import action_reference, describe_argument
from coalition.domain import ActionArgs, IsoDate, Money, Number, Text, Texts, catalog
from coalition.governance.policy import default_policy

pytestmark = pytest.mark.unit

DOCS = Path(__file__).parents[2] / "docs" / "packs"
SHIPPED = ("helios", "billing-desk")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_committed_reference_is_what_the_declarations_generate(name: str) -> None:
    committed = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    generated = action_reference(catalog().pack(name), default_policy(name))
    assert committed == generated, (
        f"docs/packs/{name}.md is stale: run coalition pack docs {name} --out docs/packs/{name}.md"
    )


def test_every_file_in_docs_packs_is_a_shipped_pack() -> None:
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted(SHIPPED)


def test_a_row_reads_types_bounds_and_rules_from_the_declaration() -> None:
    text = action_reference(catalog().pack("billing-desk"), default_policy("billing-desk"))
    row = next(line for line in text.splitlines() if line.startswith("| `credit_account` |"))
    assert "`amount_usd` money (whole cents), > 0" in row
    assert "| billing | `amount_usd` | `account_id` |" in row
    assert "gate `refund_approval` (gate.refund_approval) when `args.amount_usd > limits.approval.credit_usd`" in row
    assert "deny `limit.credit.max`" in row
    escalate = next(line for line in text.splitlines() if line.startswith("| `escalate_case` |"))
    assert "gate `case_escalation` (gate.case_escalation) always" in escalate


class _Kinds(ActionArgs):
    name: Text
    amount: Money = Field(ge=0)
    ratio: Number = Field(gt=0, le=1)
    on: IsoDate
    tags: Texts = Field(min_length=2)
    count: int = 3


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        ("name", "`name` text"),
        ("amount", "`amount` money (whole cents), ≥ 0"),
        ("ratio", "`ratio` number, > 0, ≤ 1"),
        ("on", "`on` date (YYYY-MM-DD)"),
        ("tags", "`tags` list of string, at least 2 items"),
        ("count", "`count` integer, optional (default 3)"),
    ],
)
def test_an_argument_shows_its_type_and_bounds(field: str, shown: str) -> None:
    assert describe_argument(field, _Kinds.model_fields[field]) == shown


def test_a_cel_or_does_not_split_a_table_cell() -> None:
    text = action_reference(catalog().pack("helios"), default_policy("helios"))
    row = next(line for line in text.splitlines() if line.startswith("| `set_price` |"))
    assert "\\|\\|" in row
    assert row.replace("\\|", "").count("|") == 8  # seven cells


def test_check_fails_on_a_stale_file_and_names_the_command(tmp_path: Path) -> None:
    out = tmp_path / "billing-desk.md"
    written = CliRunner().invoke(pack_app, ["docs", "billing-desk", "--out", str(out)])
    assert written.exit_code == 0, written.output
    fresh = CliRunner().invoke(pack_app, ["docs", "billing-desk", "--out", str(out), "--check"])
    assert fresh.exit_code == 0, fresh.output
    out.write_text(out.read_text(encoding="utf-8").replace("Waive one fee", "Waive a fee"), encoding="utf-8")
    stale = CliRunner().invoke(pack_app, ["docs", "billing-desk", "--out", str(out), "--check"])
    assert stale.exit_code == 1
    assert "is not what pack billing-desk's declarations generate" in stale.output
    assert "Traceback" not in stale.output


def test_an_unknown_pack_is_one_line() -> None:
    done = CliRunner().invoke(pack_app, ["docs", "nope"])
    assert done.exit_code == 2
    assert "pack 'nope': is not installed" in done.output
