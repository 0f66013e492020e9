"""`vectorforge alias create|switch|delete|list`, through the installed console script, on a data
folder and on a running server."""

from __future__ import annotations

from pathlib import Path

import vectorforge as vf
from tests.cli.conftest import Run
from tests.serverproc import start_server


def _collections(cli: Run, *names: str) -> None:
    for name in names:
        done = cli("collections", "create", name, "--dim", "4", "--index", "flat")
        assert done.returncode == 0, done.stderr


def test_alias_commands_on_a_data_folder(cli: Run, tmp_path: Path) -> None:
    _collections(cli, "blue", "green")
    empty = cli("alias", "list")
    assert empty.returncode == 0 and "no aliases" in empty.stderr
    assert "vectorforge alias create" in empty.stderr
    done = cli("alias", "create", "prod", "blue")
    assert done.returncode == 0 and "alias prod -> blue" in done.stdout, done.stderr
    listed = cli("alias", "list")
    assert listed.returncode == 0 and "prod" in listed.stdout and "blue" in listed.stdout
    info = cli("collections", "info", "prod", "--json")  # a collection command takes the alias
    assert info.returncode == 0 and '"name": "blue"' in info.stdout
    switched = cli("alias", "switch", "prod", "green")
    assert switched.returncode == 0 and "alias prod -> green (was blue)" in switched.stdout
    with vf.connect(tmp_path / "vf-data") as db:
        assert db.list_aliases() == {"prod": "green"}

    again = cli("alias", "create", "prod", "blue")
    assert again.returncode == 2 and "alias 'prod' already exists" in again.stderr
    missing = cli("alias", "switch", "nope", "blue")
    assert missing.returncode == 2 and "alias 'nope' does not exist" in missing.stderr
    clash = cli("collections", "create", "prod", "--dim", "4")
    assert clash.returncode == 2 and "'prod' is an alias of collection 'green'" in clash.stderr
    refused = cli("collections", "delete", "green", "--yes")
    assert refused.returncode == 2 and "target of alias 'prod'" in refused.stderr
    assert "Traceback" not in refused.stderr + clash.stderr + missing.stderr + again.stderr

    deleted = cli("alias", "delete", "prod")
    assert deleted.returncode == 0 and "deleted alias prod" in deleted.stdout
    assert cli("collections", "delete", "green", "--yes").returncode == 0


def test_alias_commands_on_a_running_server(cli: Run, tmp_path: Path) -> None:
    server = start_server(tmp_path / "served")
    try:
        with vf.connect(server.url) as db:
            for name in ("blue", "green"):
                db.create_collection(name, dim=4, index="flat")
        assert cli("alias", "create", "prod", "blue", "--server", server.url).returncode == 0
        done = cli("alias", "switch", "prod", "green", "--server", server.url)
        assert done.returncode == 0 and "(was blue)" in done.stdout, done.stderr
        listed = cli("alias", "list", "--server", server.url)
        assert listed.returncode == 0 and "green" in listed.stdout
        with vf.connect(server.url) as db:
            assert db.get_collection("prod").name == "green"
        assert cli("alias", "delete", "prod", "--server", server.url).returncode == 0
        with vf.connect(server.url) as db:
            assert db.list_aliases() == {}
    finally:
        server.stop()
