"""The dashboard page in a real headless chromium (Debian's `chromium`, driven over the
DevTools protocol): every task and its state, live updates without a reload, the log,
and answering a question."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import Chromium, Page, find
from conftest import Checkout
from test_review import run as run_reviewed
from test_review import write as write_reviewed
from test_serve import P, finish, hold_t1
from webclient import serving

from orchlib.state.words import table_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find() is None, reason="chromium is not installed (apt-get install chromium; CI does)"
    ),
]

ROWS = "[...document.querySelectorAll('#tasks tbody tr')]"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    with Chromium(tmp_path / "chromium-profile") as found:
        yield found


def rows(page: Page) -> dict[str, str]:
    return dict(page.evaluate(f"{ROWS}.map(r => [r.dataset.id, r.dataset.status])"))


def nodes(page: Page) -> dict[str, str]:
    script = "[...document.querySelectorAll('#dag g.node')]"
    script += ".map(n => [n.dataset.id, n.getAttribute('class')])"
    return dict(page.evaluate(script))


def test_every_task_and_its_state(checkout: Checkout, browser: Chromium) -> None:
    checkout.scenario({"t2": [[{"error": "no database"}]]})
    checkout.seed()
    assert checkout.doit().returncode != 0
    expected = {t["id"]: t["status"] for t in checkout.state()["tasks"]}
    assert expected == {"t1": "DONE", "t2": "ERROR", "t3": "SKIPPED", "t4": "SKIPPED"}
    with serving(checkout.root) as server:
        page = browser.open(server.url)
        page.wait_for("document.body.dataset.renderMs")
        assert rows(page) == expected
        assert {k: v.split()[1] for k, v in nodes(page).items()} == {
            k: f"t-{table_json()[v]['tone']}" for k, v in expected.items()
        }  # the tone of the one table of words (state/words.py)
        assert page.evaluate("document.querySelectorAll('#dag path.edge').length") == 3
        table = page.evaluate("document.querySelector('#tasks tbody').innerText")
        assert "no database" in table and "did t1" in table
        plans = page.evaluate("document.getElementById('plans').innerText")
        assert P in plans and "failed" in plans
        assert not [line for line in page.console() if "rendered" not in line]


def test_the_page_follows_a_run_without_reloading(
    checkout: Checkout, browser: Chromium, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    hold_t1(checkout, go)
    checkout.seed()
    run = checkout.start()
    try:
        with serving(checkout.root) as server:
            state = checkout.root / ".orch" / P / "state.json"
            checkout.wait_for(lambda: state.exists() and "IN_PROGRESS" in state.read_text())
            page = browser.open(server.url + "#task=t1")
            page.wait_for(
                f"{ROWS}.find(r => r.dataset.id == 't1')?.dataset.status == 'IN_PROGRESS'"
            )
            page.evaluate("window.notReloaded = true")
            page.wait_for("document.getElementById('log').textContent.includes('scaffolding')")
            go.touch()
            page.wait_for(f"{ROWS}.every(r => r.dataset.status == 'DONE')", timeout=30)
            assert page.evaluate("window.notReloaded") is True
            assert all("t-done" in c.split() for c in nodes(page).values())
            page.wait_for("document.getElementById('log').textContent.includes('[DONE:')")
            page.wait_for("document.querySelector('#plans a').innerText.includes('completed')")
        assert finish(run) == 0
    finally:
        finish(run, kill=True)


def test_answering_from_the_page(checkout: Checkout, browser: Chromium) -> None:
    checkout.scenario({"t2": [[{"question": "Postgres or SQLite?"}], [{"done": "used it"}]]})
    checkout.seed()
    assert checkout.doit().returncode != 0
    with serving(checkout.root) as server:
        anonymous = browser.open(f"{server.base}/#task=t2")  # no token, no cookie yet
        anonymous.wait_for("document.body && document.body.innerText.includes('needs its token')")
        assert "orchlib: open http://" in anonymous.evaluate("document.body.innerText")
        assert anonymous.evaluate("document.getElementById('answer-form')") is None

        page = browser.open(f"{server.url}#task=t2")
        page.wait_for("document.getElementById('questions').innerText.includes('Postgres')")
        page.evaluate(
            "document.getElementById('answer-text').value = 'SQLite';"
            "document.getElementById('answer-send').click()"
        )
        page.wait_for("document.getElementById('answer-msg').textContent.includes('answered')")
        page.wait_for("!!document.querySelector('.question.answered')")  # the event came back
    question = checkout.state()["tasks"][1]["questions"][0]
    assert question["answer"] == "SQLite"
    assert json.loads(json.dumps(question))["answeredAt"]


def test_the_token_moves_into_a_cookie_and_out_of_the_address(
    checkout: Checkout, browser: Chromium
) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    with serving(checkout.root) as server:
        page = browser.open(f"{server.url}#task=t1")
        page.wait_for("document.body.dataset.renderMs")
        assert page.evaluate("location.href") == f"{server.base}/#task=t1"  # token dropped
        assert "token" not in page.evaluate("history.state === null && location.search")
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
        page.wait_for("document.getElementById('log').textContent.includes('[DONE:')")
        # A later visit without the token works from the cookie: the page, its API reads,
        # its event streams (`/events` and the log's).
        later = browser.open(f"{server.base}/#task=t2")
        later.wait_for("document.getElementById('conn').dataset.state == 'live'")
        later.wait_for(f"{ROWS}.length == 4")
        later.wait_for("document.getElementById('log-state').textContent == 'attempt finished'")
        assert "did t2" in later.evaluate("document.getElementById('log').textContent")


def test_the_reviewer_s_transcript_beside_the_attempt_s(
    checkout: Checkout, browser: Chromium
) -> None:
    (checkout.root / "app").mkdir()
    checkout.scenario({"t1": [[{"write": ["a.txt", "alpha\n"]}, {"done": "a.txt made"}]],
                       "t1.review": [[{"say": "[APPROVE:{tid}] a.txt holds alpha"}]]})  # fmt: skip
    write_reviewed(checkout, [{"id": "t1"}])
    assert run_reviewed(checkout).returncode == 0
    box = "document.getElementById('review-box')"
    text = "document.getElementById('log').textContent"
    with serving(checkout.root) as server:
        page = browser.open(f"{server.url}#plan=rev&task=t1")
        page.wait_for(f"{text}.includes('[DONE:')")
        page.wait_for(f"!{box}.hidden")  # the attempt has a reviewer's transcript
        assert "holds alpha" not in page.evaluate(text)
        page.evaluate("document.getElementById('review').click()")
        page.wait_for(f"{text}.includes('a.txt holds alpha')")
        page.wait_for("document.getElementById('log-state').textContent == 'review finished'")
        assert "review=1" in page.evaluate("document.getElementById('raw-log').href")
        page.evaluate("document.getElementById('review').click()")  # back to the attempt's
        page.wait_for(f"{text}.includes('[DONE:') && !{text}.includes('holds alpha')")
        # An attempt without a review offers no box.
        checkout.seed()
        assert checkout.doit().returncode == 0
        plain = browser.open(f"{server.url}#plan={P}&task=t1")
        plain.wait_for("document.getElementById('log-state').textContent == 'attempt finished'")
        assert plain.evaluate(f"{box}.hidden") is True
