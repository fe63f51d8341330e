"""The whole loop on a real service: score, moderators decide, retrain, gate, promote, rollback.

Two replicas share one SQLite file; every step goes through real HTTP or the real CLI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kit.pg import fresh_database
from loop.loopkit import LABELS, decide_everything, last_json, login, score_all, sellers
from serve.test_replicas import wait_for

from karung.cli.main import main
from karung.serve.review.models import AuditEntry


def version(client: httpx.Client) -> str:
    return str(client.get("/v1/admin/model").json()["model"]["model_version"])


def photos(per_label: int, seed0: int) -> list[tuple[str, int, str]]:
    """``(label, seed, seller)``: each seller posts photos of every label."""
    who = sellers(3, 6)
    return [
        (label, seed0 + li * 1000 + i, who[(i + li) % len(who)])
        for li, label in enumerate(LABELS)
        for i in range(per_label)
    ]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The replicas' one database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        with fresh_database() as url:
            yield url


def test_label_retrain_gate_promote_rollback(
    replicas: Any,
    tmp_path: Path,
    champion: Path,
    shared_db: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = shared_db
    first, second = replicas(db), replicas(db)
    items = photos(24, 0)
    truth = {f"{label}-{seed}": label for label, seed, _ in items}
    with first.client() as a, second.client() as b:
        parent = version(a)
        score_all(a, items[::2])
        score_all(b, items[1::2])
        mod, csrf = login(first.base_url, "ana")
        assert decide_everything(mod, csrf, a, truth) == len(items)
        mod.close()

        # A retrain from the decisions: better than a head that knows nothing, so promoted.
        code, out = run_cli(
            capsys, "retrain", "--db", db, "--out", str(tmp_path / "run1"),
            "--model", str(champion), "--no-int8", "--quiet", "--actor", "ml-eng",
        )  # fmt: skip
        assert code == 0, out
        good = last_json(out)
        assert good["promoted"] is True and good["gate_passed"] is True, good
        assert good["challenger"]["metrics"]["auc"] > good["champion"]["metrics"]["auc"]
        assert Path(good["report"]).is_file()
        new = good["challenger"]["version"]
        assert wait_for(lambda: version(a) == new and version(b) == new), "replicas did not follow"
        lineage = json.loads((Path(good["challenger"]["path"]) / "lineage.json").read_text())
        assert lineage["parent_version"] == parent and lineage["promoted_by"] == "ml-eng"
        assert lineage["data"]["reviewed_rows"] == len(items)
        mod, _ = login(second.base_url, "budi")
        page = mod.get("/review/models").text  # the review UI shows the model history
        assert new in page and parent in page and "ml-eng" in page and "passed" in page
        mod.close()

        # A deliberately worse challenger (shuffled labels) is refused; nothing changes.
        code, out = run_cli(
            capsys, "retrain", "--db", db, "--out", str(tmp_path / "run2"), "--no-int8",
            "--quiet", "--shuffle-labels",
        )  # fmt: skip
        bad = last_json(out)
        assert code == 0 and bad["promoted"] is False and bad["gate_passed"] is False, bad
        assert bad["champion"]["version"] == new and bad["reasons"]
        assert "REFUSED" in Path(bad["report"]).read_text()
        time.sleep(0.3)
        assert version(a) == new and version(b) == new

        # --force is explicit: the refused challenger goes live, and the record says so.
        code, out = run_cli(
            capsys, "retrain", "--db", db, "--out", str(tmp_path / "run3"), "--no-int8",
            "--quiet", "--shuffle-labels", "--force", "--actor", "ml-eng",
        )  # fmt: skip
        forced = last_json(out)
        assert forced["promoted"] is True and forced["gate_passed"] is False, forced
        assert json.loads((Path(forced["challenger"]["path"]) / "lineage.json").read_text())[
            "forced"
        ]
        worse = forced["challenger"]["version"]
        assert wait_for(lambda: version(a) == worse and version(b) == worse)

        # History, then rollback in one command: both replicas return to the parent, twice.
        code, out = run_cli(capsys, "models", "list", "--db", db)
        assert code == 0 and new in out and f"parent={parent}" in out and f"parent={new}" in out
        code, out = run_cli(capsys, "models", "show", "--db", db)
        shown = json.loads(out)["lineage"]
        assert code == 0 and shown["model_version"] == worse and shown["forced"] is True
        for target in (new, parent):
            code, out = run_cli(capsys, "models", "rollback", "--db", db, "--actor", "oncall")
            assert code == 0 and json.loads(out)["rolled_back_to"]["model_version"] == target
            assert wait_for(lambda t=target: version(a) == t and version(b) == t)  # type: ignore[misc]
        code, out = run_cli(capsys, "models", "rollback", "--db", db)
        assert code == 1  # the shipped parent has no parent of its own
        models = a.get("/v1/admin/models").json()["models"]
        assert [m["model_version"] for m in models[:4]] == [parent, new, worse, new]
        mod, _ = login(first.base_url, "ana")
        audit = mod.get("/review/audit").text  # the rollbacks are in the moderators' audit log
        assert "model_rollback" in audit and "model_promote" in audit
        mod.close()
    with first.app.state.sessions() as session:
        actions = [(e.action, e.actor) for e in session.query(AuditEntry).order_by(AuditEntry.id)]
    assert actions.count(("model_promote", "ml-eng")) == 2
    assert actions.count(("model_rollback", "oncall")) == 2


def test_admin_retrain_job_runs_the_cli_in_a_child_process(replicas: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    service = replicas(db)
    items = photos(24, 50_000)
    truth = {f"{label}-{seed}": label for label, seed, _ in items}
    with service.client() as admin:
        before = version(admin)
        score_all(admin, items)
        mod, csrf = login(service.base_url, "budi")
        decide_everything(mod, csrf, admin, truth)
        mod.close()
        r = admin.post("/v1/admin/retrain", json={"dry_run": True, "int8": False})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] == "queued" and job["requested_by"] == "key:admin"

        def finished() -> bool:
            return admin.get(f"/v1/admin/retrain/{job['id']}").json()["status"] in (
                "done",
                "failed",
            )

        assert wait_for(finished, timeout=240), (Path(job["out"]) / "retrain.log").read_text()
        body = admin.get(f"/v1/admin/retrain/{job['id']}").json()
        log = (Path(job["out"]) / "retrain.log").read_text()
        assert body["status"] == "done", log
        assert body["result"]["promoted"] is False and body["result"]["decision"].startswith("dry")
        assert Path(body["result"]["report"]).is_file()
        assert version(admin) == before  # a dry run changes nothing
        assert admin.get("/v1/admin/retrain/999").status_code == 404
        # Nothing was promoted, so there is nothing to roll back to.
        assert admin.post("/v1/admin/models/rollback").status_code == 409
