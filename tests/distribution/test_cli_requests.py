"""``passpost requests list|show``, ``--version``, ``--data-dir`` and the new-directory note."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from passpost import __version__
from passpost.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"passpost {__version__}"


def test_new_data_dir_is_announced_once(settings_env: Path, tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    first = runner.invoke(app, ["--data-dir", str(where), "requests", "list", "--json"])
    assert first.exit_code == 0, first.output
    assert "no passpost database in" in first.stderr and str(where) in first.stderr
    assert json.loads(first.stdout) == {"total": 0, "requests": []}
    assert (where / "passpost.db").exists()
    second = runner.invoke(app, ["--data-dir", str(where), "requests", "list"])
    assert second.exit_code == 0 and "no passpost database" not in second.stderr
    assert "0 request(s)" in second.stdout


def test_show_unknown_and_bad_ids(settings_env: Path) -> None:
    missing = runner.invoke(app, ["requests", "show", "12"])
    assert missing.exit_code == 1 and "REQUEST_NOT_FOUND" in missing.stderr
    bad = runner.invoke(app, ["requests", "show", "x1"])
    assert bad.exit_code == 1 and "INVALID_ID" in bad.stderr
    state = runner.invoke(app, ["requests", "list", "--state", "lost"])
    assert state.exit_code == 1 and "INVALID_STATE" in state.stderr
