"""A job planned before session 19 to an Azure URL that names its account in the host
(``abfss://C@ACCOUNT.dfs…/out/``, ``https://ACCOUNT.blob…/C/out/``) holds its destination
as ``StoreURL.display`` spelled it then, ``az://ACCOUNT/C/out/``, which reads back as a
container named ACCOUNT.  Such a job, its row written that way in SQLite, keeps working
against Azurite: ``status`` names its place as the user typed it, ``run`` copies into it,
and ``sync --job J SRC DST`` takes DST in any spelling of that place (the old form no
longer matched any: refused) and refuses another place."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests import servers
from tests.e2e.cli import lakeshift, one_clear_line
from tests.helpers import next_second


def test_a_job_saved_with_the_old_azure_destination_keeps_working(
        cli_env: dict[str, str], azurite: Any, container: str, blob_service: Any,
        tmp_path: Path) -> None:
    account = servers.AZURITE_ACCOUNT
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "d" / "b.txt").write_bytes(b"bb")
    typed = f"abfss://{container}@{account}.dfs.core.windows.net/out/"
    db_file = tmp_path / "c.db"
    db = f"sqlite:///{db_file}"
    p = lakeshift("plan", str(src), typed, "--job", "old", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    con = sqlite3.connect(db_file)
    try:
        # What plan saved before session 19 (display() of an account-naming Azure URL).
        with con:
            con.execute("update lakeshift_jobs set destination = ? where name = 'old'",
                        (f"az://{account}/{container}/out/",))
        assert [r[0] for r in con.execute("select destination from lakeshift_partitions")] \
            == [typed]  # the partitions keep the URL as typed (then as now)
    finally:
        con.close()

    # status: the job's place as typed, for every job and for this one.
    p = lakeshift("status", "--db", db, "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert [j["destination"] for j in json.loads(p.stdout)["jobs"]] == [typed]
    p = lakeshift("status", "--job", "old", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"job old → {typed}: 1 partition"), p.stdout
    assert f"az://{account}/" not in p.stdout

    # run: into the container the URL named, not one named after the account.
    p = lakeshift("run", "--job", "old", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    names = sorted(b.name for b in blob_service.get_container_client(container).list_blobs())
    assert names == ["out/a.txt", "out/d/b.txt"], names
    assert account not in [c.name for c in blob_service.list_containers()]

    # sync --job with the job's URLs, its destination in each spelling of its place.
    next_second()
    for destination in (typed, f"az://{container}/out", f"https://{account}.blob.core.windows"
                        f".net/{container}/out/", f"abfss://{container}@{account}.dfs.core"
                        ".windows.net/out"):
        p = lakeshift("sync", str(src), destination, "--job", "old", "--db", db, "--lag", "0",
                      env=cli_env)
        assert p.returncode == 0, (destination, p.stdout + p.stderr)
        assert p.stdout.startswith("Sync pass (run "), p.stdout
    # ... and another place is still refused, naming the job's place as typed.
    p = lakeshift("sync", str(src), f"az://{container}/elsewhere/", "--job", "old", "--db", db,
                  "--lag", "0", env=cli_env)
    assert p.returncode == 2
    line = one_clear_line(p)
    assert f"{src} → {typed}, not" in line and "leave the URLs out" in line, line
