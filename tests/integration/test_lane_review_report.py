"""Where the model lanes meet the sampled approval tier: chaos-week under packs/helios/policies/helios-tiers.yaml
with ops in the autonomous lane (the offline model chooses ops' credits), two of the credits it chose reviewed —
one right, one wrong. The report's lane section carries, per agent and chooser, how many proposals were sampled,
reviewed and marked wrong (the sampled error rate) next to the allowed / denied / escalated rates, in md, html
and json; read with no installation keys (the marks recorded their reviewers' keys)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.bus.keys import public_text
from coalition.bus.memory import MemoryBus
from coalition.governance import load_policy
from coalition.governance.policy import parse_policy
from coalition.governance.reviews import record_review, review_queue
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.report_render import render
from coalition.scenarios.reports import RunReport, run_report
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.integration

TIERS = Path(__file__).parents[2] / "packs" / "helios" / "policies" / "helios-tiers.yaml"
RUN = "lane-review"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunReport]:
    shipped = load_policy(TIERS)
    policy = parse_policy({**shipped.document, "lanes": {"ops": {"lane": "autonomous"}}}, source="tiers+ops-lane")
    keys = {name: Ed25519PrivateKey.generate() for name in ("frank", "alice")}
    with SqliteLedger(tmp_path_factory.mktemp("lane-review") / "ledger.db") as ledger:
        assemble_run(
            load_scenario("chaos-week"), bus=MemoryBus(namespace=RUN), ledger=ledger, run_id=RUN, policy=policy
        ).run()
        ops = [i for i in review_queue(ledger, RUN) if i.agent == "ops"]
        assert len(ops) >= 3
        for item, (name, mark, reason) in zip(
            ops, [("frank", "right", ""), ("alice", "wrong", "a credit for a lost bill, not an outage")], strict=False
        ):
            done = record_review(
                ledger,
                run_id=RUN,
                proposal_id=item.proposal_id,
                reviewer=name,
                mark=mark,  # type: ignore[arg-type]
                reason=reason,
                policy=policy,
                key=keys[name],
                trusted={name: public_text(keys[name].public_key())},
            )
            assert done.accepted, done.reason
        yield run_report(ledger, RUN)  # no installation keys: the marks carry their reviewers' keys


def test_the_lane_row_carries_the_sampled_error_rate(report: RunReport) -> None:
    assert report.lanes is not None
    (row,) = report.lanes.rows
    assert (row.agent, row.chosen_by) == ("ops", "model")
    assert row.sampled >= 3
    assert (row.reviewed, row.wrong, row.sampled_error_rate) == (2, 1, 0.5)
    assert report.reviews is not None
    ops = next(r for r in report.reviews.rows if r.agent == "ops")
    assert (ops.sampled, ops.reviewed, ops.wrong) == (row.sampled, row.reviewed, row.wrong)  # every credit is ops'


def test_md_html_and_json_show_it(report: RunReport) -> None:
    assert report.lanes is not None
    row = report.lanes.rows[0]
    allow = f"{row.outcomes.get('allow', 0) / row.proposals:.0%}"
    md = render(report, "md")
    assert "| sampled | reviewed | sampled wrong |" in md
    assert f"| ops | model | {row.proposals} | {allow} |" in md
    assert f"| {row.refused_calls} | {row.sampled} | 2 | 1 (50%) |" in md
    html = render(report, "html")
    assert "<th>sampled wrong</th>" in html
    assert f"<td>{row.sampled}</td><td>2</td><td>1 (50%)</td></tr>" in html
    doc = orjson.loads(render(report, "json"))
    (lane,) = doc["lanes"]["rows"]
    assert (lane["sampled"], lane["reviewed"], lane["wrong"], lane["sampled_error_rate"]) == (row.sampled, 2, 1, 0.5)
    assert lane["rates"]["allow"] == pytest.approx(row.outcomes.get("allow", 0) / row.proposals)
