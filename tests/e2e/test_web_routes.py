"""The web console through FastAPI's TestClient over a real SQLite ledger holding a real (short) interactive run."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from coalition.bus.clock import SimulatedClock
from coalition.bus.keys import APPROVERS_DIR, ApproverKeys
from coalition.bus.memory import MemoryBus
from coalition.governance.approvals import load_escalations, policy_for_run
from coalition.governance.decision_signatures import verify_decisions
from coalition.governance.escalation import RefusalCode
from coalition.governance.policy import Policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.entry import EntryDraft
from coalition.ledger.explain import cited_entry
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.report_render import render
from coalition.scenarios.reports import DecisionRow, run_report
from coalition.scenarios.runner import DayProgress, RunnerOptions
from coalition.scenarios.spec import load_scenario
from coalition.web import views
from coalition.web.app import create_app
from coalition.web.figures import NARROW_FIGURES, figure_islands
from coalition.web.passwords import hash_password
from coalition.web.routes_approvals import REFUSAL_STATUS
from coalition.web.routes_assets import PLOTLY_JS_URL
from coalition.web.views import QUIET_LIMIT

pytestmark = pytest.mark.e2e

FIGURES = ("money", "revenue", "prices", "timeline", "outcomes", "budgets")

RUN = "web-test"
PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
PASSWORD_HASH = hash_password(PASSWORD)
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


APPROVERS = ("carol", "dave", "alice", "finance")


class _StopBeforeTheEnd(Exception):
    """Raised from the day callback: the run stops as an interrupted interactive run would, still open."""


def record_open_run(path: Path, policy: Policy | None = None) -> None:
    """Two simulated days of helios-launch (under `policy`), interactive with no wait, stopped before its end;
    the approvers' keys sealed with PASSWORD beside the ledger, their public halves recorded at start."""
    keys = ApproverKeys(path.parent / "keys" / APPROVERS_DIR)
    directory = {name: keys.create(name, PASSWORD) for name in APPROVERS}
    scenario = load_scenario("helios-launch").model_copy(update={"days": 2})
    with SqliteLedger(path) as ledger:
        bus = MemoryBus(namespace=RUN)

        def still_running(progress: DayProgress) -> None:
            if progress.day == scenario.days - 1:  # stop before run.finished: a finished run takes no decisions
                raise _StopBeforeTheEnd

        options = RunnerOptions(
            interactive=True,
            approval_wait_seconds=0,
            poll_seconds=0.01,
            settings={"approver_keys": directory},
            on_day=still_running,
        )
        with pytest.raises(_StopBeforeTheEnd):
            assemble_run(scenario, bus=bus, ledger=ledger, run_id=RUN, policy=policy, options=options).run()
        bus.close()


@pytest.fixture(scope="module")
def template_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days of helios-launch, interactive with no wait, stopped before its end (an open run, as a
    console decides on): two market entries stay pending (four-eyes).
    The console's approvers have signing keys sealed with PASSWORD (keys/approvers/ beside the ledger), and the
    run recorded their public halves at start."""
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    record_open_run(path)
    with SqliteLedger(path) as ledger:
        ledger.append(
            [
                EntryDraft(
                    run_id=RUN,
                    sim_time=datetime(2025, 3, 4, tzinfo=UTC),
                    actor="system",
                    actor_kind="system",
                    kind="system",
                    subject="xss-probe",
                    rationale=f"note {XSS}",
                )
            ]
        )
    return path


class Console:
    """A TestClient plus the clock and helpers to log in as a given user."""

    def __init__(self, client: TestClient, clock: SimulatedClock, ledger_path: Path) -> None:
        self.client = client
        self.clock = clock
        self.ledger_path = ledger_path

    def login(self, name: str) -> str:
        """Log in (fresh cookies) and return the session's CSRF token."""
        self.client.cookies.clear()
        form = self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = self.client.post(
            "/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1), "next": "/approvals"}
        )
        assert response.status_code == 200, response.text
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', response.text)
        assert csrf is not None
        return csrf.group(1)

    def pending(self) -> list[str]:
        with SqliteLedger(self.ledger_path, create=False) as ledger:
            policy = policy_for_run(ledger, RUN)
            return [e.proposal_id for e in load_escalations(ledger, run_id=RUN, policy=policy) if e.is_open]

    def decide(self, csrf: str | None, proposal_id: str, decision: str = "approve", reason: str = "ok", **extra: str):  # type: ignore[no-untyped-def]
        data = {"run_id": RUN, "proposal_id": proposal_id, "decision": decision, "reason": reason, **extra}
        if csrf is not None:
            data["csrf_token"] = csrf
        return self.client.post("/approvals/decide", data=data, follow_redirects=False)

    def approvals(self, kind: str = "approval") -> list[tuple[str | None, str | None, str]]:
        with SqliteLedger(self.ledger_path, create=False) as ledger:
            entries = ledger.query(LedgerQuery(run_id=RUN, kind=kind))
        return [(e.approver, e.subject, e.payload.get("method", "")) for e in entries]


@pytest.fixture
def console(template_ledger: Path, tmp_path: Path) -> Iterator[Console]:
    ledger_path = tmp_path / "ledger.db"
    shutil.copy(template_ledger, ledger_path)
    shutil.copytree(template_ledger.parent / "keys", tmp_path / "keys")
    clock = SimulatedClock(T0)
    app = create_app(ledger_path, tmp_path / "users.db", clock=clock, session_ttl=timedelta(minutes=30))
    users = app.state.console.users
    for name, roles in {
        "carol": ["approver"],
        "dave": ["approver"],
        "alice": ["approver"],
        "finance": ["approver"],
        "vera": ["viewer"],
        "audrey": ["auditor"],
        "pam": ["policy-admin"],
    }.items():
        users.add(name, roles, PASSWORD_HASH, now=T0)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Console(client, clock, ledger_path)


class TestAccess:
    """Deny by default, sessions, cookies."""

    @pytest.mark.parametrize(
        "path", ["/", "/runs", f"/runs/{RUN}", f"/runs/{RUN}/report.html", "/approvals", "/ledger", "/ledger/entries/1"]
    )
    def test_pages_send_anonymous_users_to_log_in(self, console: Console, path: str) -> None:
        """Every page redirects to /login without a session."""
        response = console.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")

    def test_api_without_session_is_401(self, console: Console) -> None:
        """JSON endpoints answer 401 with a reason instead of redirecting."""
        response = console.client.get("/api/runs")
        assert response.status_code == 401
        assert "log in" in response.json()["detail"]

    def test_session_cookie_flags(self, console: Console) -> None:
        """The session cookie is HttpOnly and SameSite=Strict."""
        console.login("carol")
        form = console.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = console.client.post(
            "/login",
            data={"name": "carol", "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        cookie = response.headers["set-cookie"].lower()
        assert "coalition_session=" in cookie
        assert "httponly" in cookie
        assert "samesite=strict" in cookie

    def test_wrong_password_is_refused(self, console: Console) -> None:
        """A wrong password shows the login form again with 401 and no session."""
        form = console.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = console.client.post(
            "/login", data={"name": "carol", "password": "nope", "csrf_token": token.group(1)}
        )
        assert response.status_code == 401
        assert "wrong password" in response.text
        assert "coalition_session" not in console.client.cookies

    def test_login_without_csrf_is_refused(self, console: Console) -> None:
        """The login form needs its double-submit token too."""
        response = console.client.post("/login", data={"name": "carol", "password": PASSWORD})
        assert response.status_code == 403

    def test_expired_session_is_sent_to_log_in(self, console: Console) -> None:
        """After the session's expiry the same cookie leads to /login."""
        console.login("vera")
        assert console.client.get("/", follow_redirects=False).status_code == 200
        console.clock.advance(timedelta(minutes=31))
        response = console.client.get("/approvals", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/approvals"

    def test_logout_closes_the_session(self, console: Console) -> None:
        """After logging out, the old cookie no longer works."""
        csrf = console.login("vera")
        cookie = console.client.cookies.get("coalition_session")
        assert console.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        console.client.cookies.set("coalition_session", str(cookie))
        assert console.client.get("/", follow_redirects=False).status_code == 303

    def test_open_redirect_is_not_followed(self, console: Console) -> None:
        """`next` must be a local path."""
        form = console.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = console.client.post(
            "/login",
            data={"name": "vera", "password": PASSWORD, "csrf_token": token.group(1), "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"

    def test_security_headers(self, console: Console) -> None:
        """Pages carry a strict CSP (no CDN, no inline script) and no-store."""
        response = console.client.get("/login")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert "/static/htmx.min.js" in response.text
        assert "https://" not in response.text


class TestApprovals:
    """The inbox decides through record_decision with the same rules as the CLI."""

    def test_inbox_shows_everything_needed_to_decide(self, console: Console) -> None:
        """Pending escalations show proposal, rationale, rule, effect, roles and a reason field."""
        console.login("carol")
        page = console.client.get("/approvals").text
        for text in ("enter_market", "gate.market_entry", "If approved", "governance authorizes", "0/2 approvals"):
            assert text in page
        assert page.count('name="reason" required') == 2

    def test_four_eyes_approval_is_recorded_with_user_hash_and_method(self, console: Console) -> None:
        """Two board members approve; both entries name the user, the proposal hash and method web."""
        target = console.pending()[0]
        csrf = console.login("carol")
        response = console.decide(csrf, target, reason="CA has a legal path")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/approvals?done=")
        assert target in console.pending()  # 1 of 2
        csrf = console.login("dave")
        assert console.decide(csrf, target, reason="agreed").status_code == 303
        assert target not in console.pending()
        assert console.approvals() == [("carol", target, "web"), ("dave", target, "web")]
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            entry = ledger.query(LedgerQuery(run_id=RUN, kind="approval", limit=1))[0]
        assert entry.payload["proposal_hash"]
        assert entry.rationale == "CA has a legal path"
        page = console.client.get("/approvals").text
        assert "by <b>carol</b> (board, via web)" in page

    def test_same_approver_twice_counts_once(self, console: Console) -> None:
        """A second approval by the same person is refused (409) and not recorded."""
        target = console.pending()[0]
        csrf = console.login("carol")
        assert console.decide(csrf, target).status_code == 303
        again = console.decide(csrf, target)
        assert again.status_code == 409
        assert "counts once" in again.text
        assert console.approvals() == [("carol", target, "web")]
        assert target in console.pending()

    def test_self_approval_refused(self, console: Console) -> None:
        """A console user named like the proposing agent cannot decide its proposal (403)."""
        csrf = console.login("finance")
        response = console.decide(csrf, console.pending()[0])
        assert response.status_code == 403
        assert "cannot decide it" in response.text
        assert console.approvals() == []

    def test_approver_without_the_gate_role_refused(self, console: Console) -> None:
        """alice is a risk officer: the board gate refuses her (the policy decides, not the console role)."""
        csrf = console.login("alice")
        response = console.decide(csrf, console.pending()[0])
        assert response.status_code == 403
        assert "needs one of board" in response.text

    def test_viewer_and_auditor_cannot_approve(self, console: Console) -> None:
        """Viewers and auditors get 403 even with a valid CSRF token; nothing is recorded."""
        for name in ("vera", "audrey"):
            csrf = console.login(name)
            response = console.decide(csrf, console.pending()[0])
            assert response.status_code == 403, name
        assert console.approvals() == []

    @pytest.mark.parametrize("token", [None, "", "forged-token"])
    def test_missing_or_bad_csrf_refused(self, console: Console, token: str | None) -> None:
        """Without the session's CSRF token the decision is refused with 403."""
        console.login("carol")
        response = console.decide(token, console.pending()[0])
        assert response.status_code == 403
        assert "CSRF" in response.text
        assert console.approvals() == []

    def test_cross_site_fetch_refused(self, console: Console) -> None:
        """Sec-Fetch-Site: cross-site is refused even with the right token."""
        csrf = console.login("carol")
        response = console.client.post(
            "/approvals/decide",
            data={
                "run_id": RUN,
                "proposal_id": console.pending()[0],
                "decision": "approve",
                "reason": "x",
                "csrf_token": csrf,
            },
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert response.status_code == 403
        assert "cross-site" in response.text

    def test_reason_is_required(self, console: Console) -> None:
        """A blank reason is a 400 with a clear message."""
        csrf = console.login("carol")
        response = console.decide(csrf, console.pending()[0], reason="   ")
        assert response.status_code == 400
        assert "needs a reason" in response.text

    def test_stale_proposal_hash_refused(self, console: Console) -> None:
        """A decision bound to another proposal hash is refused (approval bound to the exact proposal)."""
        csrf = console.login("carol")
        response = console.decide(csrf, console.pending()[0], proposal_hash="0" * 64)
        assert response.status_code == 409
        assert "binds to the exact proposal" in response.text

    def test_reject_decides_and_shows_who_and_why(self, console: Console) -> None:
        """One board rejection decides; the inbox shows who, how and why."""
        target = console.pending()[1]
        csrf = console.login("dave")
        assert console.decide(csrf, target, decision="reject", reason="wait for Q2").status_code == 303
        assert target not in console.pending()
        assert console.approvals("rejection") == [("dave", target, "web")]
        assert "wait for Q2" in console.client.get("/approvals").text

    def test_no_state_change_on_get(self, console: Console) -> None:
        """GET on the decision URL is not allowed."""
        console.login("carol")
        assert console.client.get("/approvals/decide").status_code == 405

    def test_unknown_escalation_is_404(self, console: Console) -> None:
        """Deciding a proposal that is not escalated says so."""
        csrf = console.login("carol")
        response = console.decide(csrf, "no-such-proposal")
        assert response.status_code == 404
        assert "no escalation" in response.text


class TestPages:
    """Overview, runs and the ledger explorer render real data and escape it."""

    def test_overview(self, console: Console) -> None:
        """Recent runs, pending approvals with risk, budgets and integrity status are on the overview."""
        console.login("vera")
        page = console.client.get("/").text
        for text in (RUN, "Pending approvals (2)", "high", "Budget use per agent", "research", "Verify now"):
            assert text in page

    def test_run_detail(self, console: Console) -> None:
        """The run page embeds the report's six plotly figures, the SVG fallback in <noscript>, KPIs and timeline."""
        assert FIGURES[-len(NARROW_FIGURES) :] == NARROW_FIGURES
        console.login("vera")
        page = console.client.get(f"/runs/{RUN}").text
        for name in FIGURES:
            assert f'<div id="fig-{name}" class="plotly-figure" data-plotly-figure="fig-{name}-data"' in page
            island = re.search(rf'<script type="application/json" id="fig-{name}-data">(.*?)</script>', page, re.S)
            assert island is not None, name
            figure = json.loads(island.group(1))
            assert figure["data"], name
            assert figure["layout"]["title"]["text"], name
        assert f'<script src="{PLOTLY_JS_URL}" defer></script>' in page
        assert '<link id="plotly.js-style-global" rel="stylesheet" href="/static/plotly-rules.css">' in page
        fallback = page[page.index("<noscript>\n<p") : page.index("</noscript>", page.index("<noscript>\n<p"))]
        assert fallback.count("<svg") == page.count("<svg") == 3
        assert 'class="marker"' in fallback
        assert "<th>KPIs</th>" in page  # KPI row stays server-rendered HTML, as the run's pack declares its KPIs
        assert "Decision timeline by agent" in page
        assert "outcome-escalate" in page
        assert f'href="/runs/{RUN}/report.html" download>Download report (HTML)</a>' in page
        assert "https://" not in page

    def test_run_page_has_no_inline_script(self, console: Console) -> None:
        """Every <script> on the run page is either a same-origin file or an inert JSON block (the CSP holds)."""
        console.login("vera")
        response = console.client.get(f"/runs/{RUN}")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        tags = re.findall(r"<script\b[^>]*>", response.text)
        assert len(tags) == 4 + len(FIGURES)  # htmx, console.js, plotly.js, charts.js, then one island per figure
        for tag in tags:
            assert 'src="/' in tag or 'type="application/json"' in tag, tag

    def test_figure_json_cannot_close_its_script_element(self, console: Console) -> None:
        """Markup in a rationale (it reaches the timeline's hover text) is escaped inside the JSON island."""
        hostile = "</script><script>alert(1)</script><!--"
        row = DecisionRow(1, "2025-03-03T00:00:00+00:00", 0, "ops", "page_oncall", "deny", None, [], "p", {}, hostile)
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            report = dataclasses.replace(run_report(ledger, RUN), decisions=[row])
        text = str(next(i for i in figure_islands(report) if i.name == "timeline").json)
        assert "<" not in text
        assert ">" not in text
        assert "\\u003cscript\\u003ealert(1)" in text
        assert json.loads(text)["data"][0]["text"] == [f"page_oncall: {hostile}"]

    def test_plotly_js_is_served_from_the_package(self, console: Console) -> None:
        """plotly.js comes from the installed plotly (no login, no CDN), gzipped, cached a year, with an ETag."""
        response = console.client.get(PLOTLY_JS_URL)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.text.startswith("/**\n* plotly.js v")
        assert response.text == get_plotlyjs()
        plain = console.client.get(PLOTLY_JS_URL, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == get_plotlyjs().encode()
        raw = console.client.get(PLOTLY_JS_URL, headers={"Accept-Encoding": "gzip"})
        assert int(raw.headers["content-length"]) < len(plain.content) / 2
        again = console.client.get(PLOTLY_JS_URL, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""

    def test_other_plotly_versions_are_404(self, console: Console) -> None:
        """Only the installed plotly's URL exists (a stale cached page gets a clear 404, not another bundle)."""
        response = console.client.get("/assets/plotly-0.0.1.min.js")
        assert response.status_code == 404
        assert "serves plotly" in response.text
        assert "not &#39;0.0.1&#39;" in response.text

    def test_download_report_html(self, console: Console) -> None:
        """The download is `coalition report --format html` for the run, as an attachment named like the CLI's."""
        console.login("vera")
        response = console.client.get(f"/runs/{RUN}/report.html")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["content-disposition"] == f'attachment; filename="report-{RUN}.html"'
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            expected = render(run_report(ledger, RUN), "html")
        assert response.text == expected
        assert 'id="fig-money"' in response.text

    def test_download_report_other_formats(self, console: Console) -> None:
        """Markdown, JSON and CSV downloads too; an unknown format or run is a clear 4xx."""
        console.login("vera")
        md = console.client.get(f"/runs/{RUN}/report.md")
        assert md.headers["content-disposition"] == f'attachment; filename="report-{RUN}.md"'
        assert md.text.startswith(f"# Run report: {RUN}")
        assert console.client.get(f"/runs/{RUN}/report.json").json()["run_id"] == RUN
        assert console.client.get(f"/runs/{RUN}/report.csv").text.startswith("seq,sim_time,day,agent")
        bad = console.client.get(f"/runs/{RUN}/report.exe")
        assert bad.status_code == 400
        assert "fmt" in bad.text
        missing = console.client.get("/runs/nope/report.html")
        assert missing.status_code == 404
        assert "no run &#39;nope&#39;" in missing.text

    def test_unknown_run_is_404(self, console: Console) -> None:
        """A run that does not exist is a clear 404."""
        console.login("vera")
        response = console.client.get("/runs/nope")
        assert response.status_code == 404
        assert "no run &#39;nope&#39;" in response.text

    def test_html_in_a_rationale_is_escaped(self, console: Console) -> None:
        """A rationale holding markup shows as text in the explorer and on the entry page."""
        console.login("vera")
        for path in ("/ledger?kind=system", "/ledger?q=note"):
            page = console.client.get(path).text
            assert "xss-probe" in page
            assert XSS not in page
            assert "&lt;script&gt;" in page
        seq = re.search(
            r'href="/ledger/entries/(\d+)">\d+</a></td><td[^>]*>[^<]*</td><td[^>]*>[^<]*</td>\s*<td[^>]*>system',
            console.client.get("/ledger?kind=system").text,
        )
        assert seq is not None
        entry = console.client.get(f"/ledger/entries/{seq.group(1)}").text
        assert XSS not in entry
        assert "&lt;img src=x" in entry

    def test_facets_search_and_keyset_pages(self, console: Console) -> None:
        """Facets filter, search finds rationales, and older/newer links walk the whole view once."""
        console.login("vera")
        page = console.client.get("/ledger?kind=verdict&outcome=escalate").text
        assert page.count("market entry") >= 2
        seen: list[str] = []
        url: str | None = f"/ledger?run={RUN}&limit=7"
        while url:
            text = console.client.get(url).text
            seen += re.findall(r'<tr class="outcome-[^"]*"><td[^>]*><a href="/ledger/entries/(\d+)"', text)
            older = re.search(r'rel="next" href="([^"]+)"', text)
            url = older.group(1).replace("&amp;", "&") if older else None
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            total = ledger.count(LedgerQuery(run_id=RUN))
        assert len(seen) == len(set(seen)) == total
        assert [int(s) for s in seen] == sorted((int(s) for s in seen), reverse=True)

    def test_bad_query_parameter_is_400_not_500(self, console: Console) -> None:
        """A malformed page parameter is a clear 4xx."""
        console.login("vera")
        response = console.client.get("/ledger?before=abc")
        assert response.status_code == 400
        assert "before" in response.text
        assert console.client.get("/api/ledger?limit=0").status_code == 422

    def test_entry_page_has_why_chain_and_chain_position(self, console: Console) -> None:
        """A verdict's page shows the proposal behind it, and prev/next hash-chain links."""
        console.login("vera")
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            verdict = ledger.query(LedgerQuery(run_id=RUN, kind="verdict", outcome="escalate", limit=1))[0]
        page = console.client.get(f"/ledger/entries/{verdict.seq}").text
        assert "Why?" in page
        assert "proposal" in page
        assert verdict.prev_hash in page
        assert f"/ledger/entries/{verdict.seq - 1}" in page

    def test_export_csv_and_json_of_a_filtered_view(self, console: Console) -> None:
        """Auditors export the whole filtered view; viewers cannot export."""
        console.login("audrey")
        csv_text = console.client.get("/ledger/export?kind=verdict&format=csv").text
        rows = csv_text.strip().splitlines()
        assert rows[0].startswith("seq,run_id")
        assert len(rows) == 1 + sum(1 for r in rows[1:] if ",verdict," in r)
        data = console.client.get("/ledger/export?kind=verdict&format=json").json()
        assert len(data) == len(rows) - 1
        assert {e["kind"] for e in data} == {"verdict"}
        console.login("vera")
        assert console.client.get("/ledger/export?format=csv").status_code == 403

    def test_verify_is_a_post_and_get_shows_the_last_result(self, console: Console) -> None:
        """GET shows the last result (none yet) and changes nothing; the POST verifies, then GET and / show it."""
        state = console.client.app.state.console  # type: ignore[attr-defined]
        csrf = console.login("vera")  # any reader may verify
        before = console.client.get("/ledger/verify")
        assert before.status_code == 200
        assert "Not verified since the console started" in before.text
        assert 'method="post" action="/ledger/verify"' in before.text
        assert state.last_verify is None
        response = console.client.post("/ledger/verify", data={"csrf_token": csrf}, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/ledger/verify")
        assert state.last_verify is not None
        checked = state.last_verify
        page = console.client.get("/ledger/verify").text
        assert "OK —" in page
        assert f"Checked {T0.isoformat(timespec='seconds')}" in page
        assert state.last_verify is checked  # reading it did not verify again
        assert "Chain verified" in console.client.get("/").text

    @pytest.mark.parametrize("token", [None, "forged-token"])
    def test_verify_needs_the_csrf_token(self, console: Console, token: str | None) -> None:
        """A POST without the session's token (or from another site) is refused and verifies nothing."""
        csrf = console.login("audrey")
        data = {"csrf_token": token} if token else {}
        assert console.client.post("/ledger/verify", data=data).status_code == 403
        cross = console.client.post(
            "/ledger/verify", data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 403
        assert console.client.app.state.console.last_verify is None  # type: ignore[attr-defined]

    def test_live_progress_events(self, console: Console) -> None:
        """The SSE stream of a run nobody runs any more (it stopped before its end, and has been quiet longer than
        the quiet limit) sends its progress, then done with status incomplete — it never hangs."""
        console.clock.set(datetime.now(UTC) + views.QUIET_LIMIT + timedelta(minutes=1))
        console.login("vera")
        with console.client.stream("GET", f"/runs/{RUN}/events") as response:
            body = "".join(response.iter_text())
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "event: progress" in body
        assert "event: done" in body
        assert '"status":"incomplete"' in body

    def test_api_endpoints(self, console: Console) -> None:
        """The JSON API lists runs, pages the ledger, explains an entry and lists pending escalations."""
        console.clock.set(datetime.now(UTC) + views.QUIET_LIMIT + timedelta(minutes=1))
        console.login("vera")
        runs = console.client.get("/api/runs").json()
        assert runs[0]["run_id"] == RUN
        assert runs[0]["status"] == "incomplete"  # stopped before its end, and quiet
        page = console.client.get("/api/ledger?limit=3").json()
        assert len(page["entries"]) == 3
        assert page["older"] == page["entries"][-1]["seq"]
        pending = console.client.get("/api/approvals").json()
        assert len(pending) == 2
        assert pending[0]["risk"] >= pending[1]["risk"]
        assert console.client.get("/api/ledger/999999").status_code == 404

    def test_policy_admin_starts_a_run_viewer_cannot(self, console: Console) -> None:
        """Only policy-admin may start a run; an unknown scenario is a 400."""
        csrf = console.login("vera")
        assert console.client.post("/runs", data={"scenario": "helios-launch", "csrf_token": csrf}).status_code == 403
        csrf = console.login("pam")
        bad = console.client.post("/runs", data={"scenario": "../etc/passwd", "csrf_token": csrf})
        assert bad.status_code == 400
        assert "no scenario" in bad.text


# Page routes with odd parameters: every one is a clear 4xx (or a page), never a 5xx.
HUGE = "99999999999999999999999"
ODD_VALUES = [HUGE, "-1", "0", "abc", "1.5", "%00", "a%00b", "%2F..%2F", "%3Cscript%3E"]
INT_ROUTES = [
    "/ledger/entries/{v}",
    "/ledger?before={v}",
    "/ledger?after={v}",
    "/ledger?limit={v}",
    "/ledger/export?before={v}&format=csv",
    "/approvals?done={v}",
]
TEXT_ROUTES = [
    "/runs/{v}",
    "/runs/{v}/events",
    "/runs/{v}/report.html",
    "/ledger?run={v}",
    "/ledger?q={v}",
    "/ledger?kind={v}&agent={v}&outcome={v}&gate={v}",
    "/approvals?run={v}",
    "/login?next={v}",
]


class TestOddParameters:
    """Huge, negative, non-numeric and NUL-containing values in page routes: 4xx pages, never 5xx."""

    @pytest.mark.parametrize("value", ODD_VALUES)
    @pytest.mark.parametrize("route", INT_ROUTES)
    def test_integer_parameters(self, console: Console, route: str, value: str) -> None:
        """An integer parameter out of range or not a number is a 400 page naming it; in range, a page or a 404."""
        console.login("audrey")
        response = console.client.get(route.format(v=value))
        assert response.status_code < 500, response.text[:300]
        in_range = (value.isdigit() and 1 <= int(value) <= 2**62) or (value == "0" and "after=" in route)
        if not in_range:
            # /ledger/entries/a/b: no such page
            slash_in_path = "%2F" in value and "{v}" in route.partition("?")[0]
            assert response.status_code == (404 if slash_in_path else 400), (route, value, response.status_code)
            assert "<!doctype html>" in response.text  # a page, not a JSON body or a traceback
            assert slash_in_path or "bad request" in response.text

    @pytest.mark.parametrize("value", ODD_VALUES)
    @pytest.mark.parametrize("route", TEXT_ROUTES)
    def test_text_parameters(self, console: Console, route: str, value: str) -> None:
        """Text parameters (run ids, facets, search, next) with odd values never give a 5xx."""
        console.login("audrey")
        response = console.client.get(route.format(v=value))
        assert response.status_code < 500, (route, value, response.text[:300])

    def test_huge_entry_number_is_400_not_500(self, console: Console) -> None:
        """The review's case: /ledger/entries/<23 digits> used to overflow SQLite (500)."""
        console.login("vera")
        response = console.client.get(f"/ledger/entries/{HUGE}")
        assert response.status_code == 400
        assert "seq" in response.text
        assert console.client.get(f"/ledger/entries/{2**62}").status_code == 404


ODD_RUN = "odd/run?x=1&y=2#frag %"
ODD_RUN_URL = "/runs/odd%2Frun%3Fx%3D1%26y%3D2%23frag%20%25"


def _append_run(ledger_path: Path, run_id: str, wall: datetime, *, days: int = 1) -> None:
    """A run that started and wrote an observation but never finished (no run.finished), written at `wall`."""
    with SqliteLedger(ledger_path, wall_clock=SimulatedClock(wall), create=False) as ledger:
        ledger.append(
            [
                EntryDraft(
                    run_id=run_id,
                    sim_time=datetime(2025, 3, day + 1, tzinfo=UTC),
                    actor="system",
                    actor_kind="system",
                    kind="system",
                    subject=f"day-{day}",
                    rationale=f"day {day} done",
                )
                for day in range(days)
            ]
        )


class TestRunIdsInUrls:
    """A run id holding "/", "?", "#", "&", "%" or a space is encoded as one path segment everywhere."""

    def test_links_and_sse_url_are_encoded(self, console: Console) -> None:
        """The runs list links to the encoded URL; the run page, its SSE stream and the inbox filter work there."""
        _append_run(console.ledger_path, ODD_RUN, T0)
        console.login("vera")
        runs = console.client.get("/runs").text
        assert f'href="{ODD_RUN_URL}"' in runs
        page = console.client.get(ODD_RUN_URL)
        assert page.status_code == 200, page.text[:300]
        assert "Run odd/run?x=1&amp;y=2#frag %" in page.text
        assert f'data-sse="{ODD_RUN_URL}/events"' in page.text
        assert 'href="/approvals?run=odd/run%3Fx%3D1%26y%3D2%23frag%20%25"' in page.text
        console.clock.advance(timedelta(minutes=20))  # quiet long enough: the stream ends at once
        with console.client.stream("GET", f"{ODD_RUN_URL}/events") as response:
            body = "".join(response.iter_text())
        assert response.status_code == 200
        assert f'"run_id":{json.dumps(ODD_RUN)}' in body
        assert "event: done" in body

    def test_other_pages_link_the_encoded_url(self, console: Console) -> None:
        """The entry page and the overview link to the run by its encoded URL."""
        _append_run(console.ledger_path, ODD_RUN, T0)
        console.login("vera")
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            seq = ledger.query(LedgerQuery(run_id=ODD_RUN, limit=1))[0].seq
        assert f'href="{ODD_RUN_URL}"' in console.client.get(f"/ledger/entries/{seq}").text
        assert f'href="{ODD_RUN_URL}"' in console.client.get("/").text


class TestUnfinishedRuns:
    """A run without run.finished and no console thread is "running" while it writes, then "incomplete"."""

    def test_a_quiet_unfinished_run_is_incomplete_and_its_stream_ends(self, console: Console) -> None:
        """Written at T0: running at T0 (a CLI run may be working); 20 quiet minutes later, incomplete everywhere."""
        _append_run(console.ledger_path, "interrupted", T0, days=2)
        console.login("vera")
        assert console.client.get("/api/runs/interrupted/progress").json()["status"] == "running"
        console.clock.advance(QUIET_LIMIT + timedelta(minutes=5))
        assert console.client.get("/api/runs/interrupted/progress").json()["status"] == "incomplete"
        with console.client.stream("GET", "/runs/interrupted/events") as response:
            body = "".join(response.iter_text())
        assert "event: done" in body
        assert '"status":"incomplete"' in body
        page = console.client.get("/runs/interrupted").text
        assert 'data-field="status">incomplete<' in page
        runs = {r["run_id"]: r["status"] for r in console.client.get("/api/runs").json()}
        assert runs["interrupted"] == "incomplete"
        assert "status-incomplete" in console.client.get("/runs").text

    def test_a_recent_unfinished_run_counts_as_running(self, console: Console) -> None:
        """Within QUIET_LIMIT of its last write the runs list and the API say running."""
        _append_run(console.ledger_path, "busy", T0)
        console.clock.advance(QUIET_LIMIT - timedelta(minutes=1))
        console.login("vera")
        runs = {r["run_id"]: r["status"] for r in console.client.get("/api/runs").json()}
        assert runs["busy"] == "running"


class TestRefusals:
    """A refused decision gets its status from the service's code and keeps the inbox's run filter."""

    def test_every_refusal_code_has_a_status(self) -> None:
        """The console maps each RefusalCode: 403 for who decides, 409 for the escalation's state."""
        assert set(REFUSAL_STATUS) == set(typing.get_args(RefusalCode))
        assert {REFUSAL_STATUS[c] for c in ("not_an_approver", "wrong_role", "self_approval")} == {403}
        assert {
            REFUSAL_STATUS[c] for c in ("already_decided", "same_approver", "expired", "stale_hash", "run_finished")
        } == {409}

    def test_a_refusal_keeps_the_run_filter(self, console: Console) -> None:
        """Refused from the inbox filtered to one run: the re-rendered inbox is still that run's."""
        _append_run(console.ledger_path, "other-run", T0)
        csrf = console.login("carol")
        filtered = console.client.get(f"/approvals?run={RUN}").text
        assert f'name="inbox_run" value="{RUN}"' in filtered
        response = console.decide(csrf, console.pending()[0], proposal_hash="0" * 64, inbox_run=RUN)
        assert response.status_code == 409
        assert f'Run <a href="/runs/{RUN}">{RUN}</a> only' in response.text
        assert f'name="inbox_run" value="{RUN}"' in response.text

    def test_an_accepted_decision_keeps_the_run_filter(self, console: Console) -> None:
        """The redirect after a recorded decision goes back to the filtered inbox."""
        csrf = console.login("carol")
        response = console.decide(csrf, console.pending()[0], inbox_run=RUN)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/approvals?done=")
        assert response.headers["location"].endswith(f"&run={RUN}")


class TestReviewExperience:
    """Issue 15 in the console: complete why chains, evidence links, integrity on entry pages, urgency, one budget
    figure, match counts, navigation on errors, the typed reason kept after a refusal."""

    def test_refused_decision_keeps_the_typed_reason(self, console: Console) -> None:
        """A 409 (stale hash) re-renders the inbox with the reason the approver typed still in the form."""
        csrf = console.login("carol")
        typed = "the region has a legal path & demand <b>"
        response = console.decide(csrf, console.pending()[0], reason=typed, proposal_hash="0" * 64)
        assert response.status_code == 409
        assert "the region has a legal path &amp; demand &lt;b&gt;</textarea>" in response.text

    def test_evidence_hash_links_to_the_entry_it_names(self, console: Console) -> None:
        console.login("vera")
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            cited, evidence = next(
                (e, ev)
                for e in sorted(ledger.query(LedgerQuery(run_id=RUN)), key=lambda e: e.kind == "observation")
                for ev in e.evidence
                if cited_entry(ledger, RUN, ev) is not None
            )
        page = console.client.get(f"/ledger/entries/{cited.seq}").text
        assert f"/ledger/evidence/{evidence}?run={RUN}" in page
        hop = console.client.get(f"/ledger/evidence/{evidence}", params={"run": RUN}, follow_redirects=False)
        assert hop.status_code == 303
        target = console.client.get(hop.headers["location"]).text
        assert evidence in target
        missing = console.client.get("/ledger/evidence/nope", params={"run": RUN})
        assert missing.status_code == 404
        assert "carries evidence id" in missing.text

    def test_entry_page_says_whether_a_verify_covers_it(self, console: Console) -> None:
        """Before any verify: not covered; after an OK verify: covered; a later entry: not covered yet; after a
        tampered row is found, the entries at and after the break say their content is not proven."""
        csrf = console.login("vera")
        assert "Not covered by a verification" in console.client.get("/ledger/entries/5").text
        console.client.post("/ledger/verify", data={"csrf_token": csrf})
        assert "Covered by the verification" in console.client.get("/ledger/entries/5").text
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            new = ledger.append(
                [
                    EntryDraft(
                        run_id=RUN,
                        sim_time=T0,
                        actor="system",
                        actor_kind="system",
                        kind="system",
                        subject="late",
                        rationale="written after the verification",
                    )
                ]
            )[0]
        assert "Written after the last verification" in console.client.get(f"/ledger/entries/{new.seq}").text
        conn = sqlite3.connect(console.ledger_path)
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("UPDATE entries SET body = replace(body, 'market', 'MARKET') WHERE seq = 7")
        conn.commit()
        conn.close()
        console.client.post("/ledger/verify", data={"csrf_token": csrf})
        assert "FAILED at entry #7" in console.client.get("/ledger/entries/9").text
        assert "Covered by the verification" in console.client.get("/ledger/entries/6").text

    def test_why_chain_includes_the_denial_and_the_revision(self, tmp_path: Path) -> None:
        """In a full helios-launch run, a denied proposal's page names the proposal that revised it, and the
        revision's page shows the denial among its causes."""
        ledger_path = tmp_path / "ledger.db"
        with SqliteLedger(ledger_path) as ledger:
            bus = MemoryBus(namespace="why")
            assemble_run(load_scenario("helios-launch"), bus=bus, ledger=ledger, run_id="why").run()
            bus.close()
            revisions = [
                e for e in ledger.query(LedgerQuery(run_id="why", kind="proposal")) if e.payload.get("supersedes")
            ]
            assert revisions, "helios-launch revises at least one denied proposal"
            revision = next(
                r
                for r in revisions
                if ledger.query(LedgerQuery(run_id="why", kind="verdict", subject=r.payload["supersedes"]))[0].outcome
                == "deny"
            )
            denial = ledger.query(LedgerQuery(run_id="why", kind="verdict", subject=revision.payload["supersedes"]))[0]
        app = create_app(ledger_path, tmp_path / "users.db")
        state = app.state.console
        user = state.users.add("vera", ["viewer"], PASSWORD_HASH, now=datetime.now(UTC))
        token, _ = state.users.open_session(user, now=datetime.now(UTC), ttl=timedelta(hours=1), instance="127.0.0.1")
        with TestClient(app, base_url="http://127.0.0.1", cookies={"coalition_session": token}) as client:
            denied_page = client.get(f"/ledger/entries/{denial.seq}").text
            revision_page = client.get(f"/ledger/entries/{revision.seq}").text
        state.close()
        assert "Revised by" in denied_page
        assert f"/ledger/entries/{revision.seq}" in denied_page
        assert 'class="chain-denial"' in revision_page
        assert f"/ledger/entries/{denial.seq}" in revision_page

    def test_inbox_deadlines_and_the_banner(self, console: Console) -> None:
        """Each pending card gives its simulated deadline and the wall-clock one (the run's approval wait); the
        banner appears when the wall deadline is 5 minutes away, on the inbox and the overview."""
        console.login("vera")
        page = console.client.get("/approvals").text
        assert "simulated h left" in page
        assert "(simulated)" in page
        assert "assuming the default 600 s wait" in page
        assert 'class="banner"' not in page
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            opened = min(v.wall_time for v in ledger.query(LedgerQuery(run_id=RUN, kind="verdict", outcome="escalate")))
        console.clock.set(max(console.clock.now(), opened + timedelta(seconds=600 - 120)))
        console.login("vera")  # the clock jumped past the session's expiry
        for path in ("/approvals", "/"):
            text = console.client.get(path).text
            assert 'class="banner"' in text, path
            assert "near" in text, path

    def test_budget_figures_are_one_set(self, console: Console) -> None:
        """The run page and the overview show base, raised, budget and spent exactly as the report counts them."""
        console.login("vera")
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            budgets = run_report(ledger, RUN).budgets
        run_page = console.client.get(f"/runs/{RUN}").text
        overview = console.client.get("/").text
        for text in (run_page, overview):
            assert '<th class="num">base</th><th class="num">raised</th>' in text
            for b in budgets:
                assert f"${b.budget_usd:,.2f}" in text
                assert f"${b.spent_usd:,.2f}" in text
        assert " of $" not in run_page  # the old "spent of base" line that contradicted the chart

    def test_prices_chart_lists_only_markets_the_run_has(self, console: Console) -> None:
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            report = run_report(ledger, RUN)
            snapshots = [
                e.payload["data"]
                for e in ledger.query(LedgerQuery(run_id=RUN, kind="observation"))
                if e.payload.get("kind") == "market.snapshot"
            ]
        active = {m for d in snapshots for m in d.get("active_markets") or []}
        offered = {m for d in snapshots for m in d.get("prices") or {}}
        assert offered - active, "the world quotes markets the business does not operate"
        prices = next(f for f in figure_islands(report) if f.name == "prices")
        names = {t["name"] for t in json.loads(str(prices.json))["data"]}
        regions = {n.split()[0] for n in names if n not in ("ceiling", "floor", "proposed prices")}
        assert regions <= active

    def test_explorer_counts_matches(self, console: Console) -> None:
        console.login("vera")
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            expected = ledger.count(LedgerQuery(kind="verdict", outcome="deny"))
            total = ledger.head()[0]
        page = console.client.get("/ledger?kind=verdict&outcome=deny").text
        assert f"<b>{expected}</b> entr" in page
        assert f"({total} in the ledger)" in page
        rows = console.client.get(
            "/ledger?kind=verdict&outcome=deny", headers={"HX-Request": "true", "HX-Target": "rows"}
        )
        assert f"<b>{expected}</b> entr" in rows.text  # the count swaps with the rows

    def test_error_pages_keep_the_navigation(self, console: Console) -> None:
        console.login("vera")
        page = console.client.get("/runs/no-such-run")
        assert page.status_code == 404
        assert 'href="/approvals"' in page.text
        assert "Log out" in page.text

    def test_explorer_action_filter(self, console: Console) -> None:
        """The action facet keeps only entries whose payload names that action, in pages, counts and exports."""
        console.login("audrey")
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            expected = [e.seq for e in ledger.query(LedgerQuery(action="enter_market", newest_first=True))]
            every = [
                e.seq for e in ledger.query(LedgerQuery(newest_first=True)) if e.payload.get("action") == "enter_market"
            ]
        assert expected == every
        assert expected
        page = console.client.get("/ledger", params={"action": "enter_market", "limit": 500}).text
        shown = [int(s) for s in re.findall(r'<td class="seq"><a href="/ledger/entries/(\d+)">', page)]
        assert shown == expected
        assert f"<b>{len(expected)}</b> entr" in page
        assert "<option selected>enter_market</option>" in page
        exported = console.client.get("/ledger/export", params={"action": "enter_market", "format": "json"}).json()
        assert sorted(e["seq"] for e in exported) == sorted(expected)


class TestSignedDecisions:
    """The console signs each decision with the approver's own key, the one the CLI opens with the same password."""

    def test_a_console_decision_carries_the_approvers_signature(self, console: Console) -> None:
        """carol's web approval is signed by carol's key (the run's directory entry), not scripted, and verifies."""
        csrf = console.login("carol")
        pid = console.pending()[0]
        response = console.decide(csrf, pid, reason="signed in the console")
        assert response.status_code == 303, response.text
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            entry = next(e for e in ledger.query(LedgerQuery(run_id=RUN, kind="approval")) if e.subject == pid)
            carol = ApproverKeys(console.ledger_path.parent / "keys" / APPROVERS_DIR).public("carol")
            assert entry.payload["signer_key"] == carol
            assert entry.payload["scripted"] is False
            assert entry.payload["method"] == "web"
            checked, problems = verify_decisions(ledger, RUN)
        assert checked >= 1
        assert problems == []

    def test_the_why_chain_never_shows_an_unverified_decision_as_a_human_one(self, console: Console) -> None:
        """After carol's signed console approval, an unsigned approval in dave's name and a copy of carol's approval
        re-filed as approval.rejected are appended past the approvals service (anyone who can write the ledger file
        can). The "why" chain (the entry page and /api/ledger/N/explain) lists carol's approval alone as a human
        decision, marked verified, and the two apart, flagged with why (on main all three were human decisions)."""
        csrf = console.login("carol")
        pid = console.pending()[0]
        assert console.decide(csrf, pid, reason="signed in the console").status_code == 303
        with SqliteLedger(console.ledger_path, create=False) as ledger:
            signed = next(e for e in ledger.query(LedgerQuery(run_id=RUN, kind="approval")) if e.subject == pid)
            fields = {name: getattr(signed, name) for name in EntryDraft.model_fields}
            unsigned = {**signed.payload, "approver": "dave", "reason": "forged", "signature": None, "signer_key": None}
            ledger.append(
                [
                    EntryDraft(
                        **{
                            **fields,
                            "approver": "dave",
                            "rationale": "forged",
                            "payload": unsigned,
                            "message_id": "forged-1",
                        }
                    ),
                    EntryDraft(**{**fields, "message_type": "approval.rejected", "message_id": "forged-2"}),
                ]
            )
            forged, refiled = (ledger.query(LedgerQuery(message_id=m))[0].seq for m in ("forged-1", "forged-2"))
        console.login("audrey")
        (decision,) = console.client.get(f"/api/ledger/{signed.seq}/explain").json()["decisions"]
        assert [(h["seq"], h["approver"]) for h in decision["human"]] == [(signed.seq, "carol")]
        assert decision["human"][0]["verified"] is True
        flagged = {u["seq"]: (u["approver"], u["problem"]) for u in decision["unverified"]}
        assert flagged == {
            forged: ("dave", "the decision of dave is not signed"),
            refiled: (
                "carol",
                "the decision of carol is filed as kind 'approval' with message type 'approval.rejected': a signed "
                "decision's kind and type name the same decision",
            ),
        }
        page = console.client.get(f"/ledger/entries/{signed.seq}").text
        assert "Recorded as human decisions but NOT verified" in page
        chain = page.partition("<h2>Why?")[2]  # past the entry's fields and its neighbours' links
        human, _, apart = chain.partition("Recorded as human decisions but NOT verified")
        assert f'<a href="/ledger/entries/{signed.seq}">' in human
        assert "(signature verified)" in human
        for seq in (forged, refiled):
            assert f'<a href="/ledger/entries/{seq}">' not in human
            assert (
                f'<li class="chain-unverified"><a href="/ledger/entries/{seq}">#{seq}</a> <b class="unverified">'
                in apart
            )
        assert "NOT a verified human decision: the decision of dave is not signed" in apart
        focus = console.client.get(f"/ledger/entries/{forged}").text
        assert "NOT verified: the decision of dave is not signed" in focus

    def test_an_approver_without_an_unlocked_key_cannot_decide(self, console: Console) -> None:
        """A console approver whose key did not open at login (none, or another password) is refused: 403."""
        console.client.app.state.console.users.add("zed", ["approver"], PASSWORD_HASH, now=T0)  # type: ignore[attr-defined]
        csrf = console.login("zed")
        before = console.approvals()
        response = console.decide(csrf, console.pending()[0])
        assert response.status_code == 403
        assert "no signing key unlocked" in response.text
        assert console.approvals() == before
