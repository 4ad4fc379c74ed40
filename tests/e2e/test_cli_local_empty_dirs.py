"""A local source's empty folders, from the CLI as a user runs it: made by copy, run and
sync where the destination has real directories (local disk; ADLS Gen2 alike), left out
with --no-empty-dirs, made as ``hdi_isfolder`` marker blobs on a flat account only when
asked (--empty-dirs), announced by a dry run and by scan, proven by verify.  A folder that
holds files needs no entry; an unreadable one is a `forbidden` failure (skipped with
--skip-errors forbidden) and a link to the destination is skipped, each with its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests import servers
from tests.e2e.cli import lakeshift, obeying_file_modes
from tests.helpers import blobs

#: The source's empty folders, as the walk names them: top-level, nested, one that only
#: holds an empty folder (only/ itself needs no entry), and a symlink to an empty folder.
FOLDERS = ["a/e/f/", "empty/", "lnk/", "only/inner/"]


def _source(tmp_path: Path) -> tuple[Path, Path]:
    src, out = tmp_path / "data", tmp_path / "out"
    for d in ("a/e/f", "empty", "full", "only/inner"):
        (src / d).mkdir(parents=True)
    (src / "full" / "x.txt").write_bytes(b"x")
    (src / "top.txt").write_bytes(b"top")
    (tmp_path / "elsewhere").mkdir()
    (src / "lnk").symlink_to("../elsewhere")
    (src / "todest").symlink_to("../out")      # the destination: never walked into
    (src / "locked").mkdir()
    (src / "locked").chmod(0)                  # unreadable, and empty
    return src, out


def _json(*args: str, env: dict[str, str], code: int = 0) -> Any:
    p = lakeshift(*args, "--json", env=env, prefix=obeying_file_modes())
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def _folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) + "/" for p in root.rglob("*")
            if p.is_dir() and not any(p.iterdir())}


def test_local_to_local_makes_the_empty_folders_and_verify_proves_them(tmp_path: Path) -> None:
    env = servers.clean_env()
    src, out = _source(tmp_path)
    try:
        dry = _json("copy", str(src), str(out), "--dry-run", env=env, code=1)
        # Announced as copies (nothing to read), not as entries the copy would skip (a
        # folder read as a file said "symlink loop").  (The unreadable folder: a dry run
        # reads it as the copy would, and says it cannot: forbidden, failed unless skipped.)
        assert dry["skipped_by_reason"] == {"destination-folder": 1}, dry
        assert dry["failed_by_kind"] == {"forbidden": 1}, dry
        assert dry["copied"] == len(FOLDERS) + 2, dry
        assert not out.exists()

        done = _json("copy", str(src), str(out), "--skip-errors", "forbidden", env=env)
        assert done["copied"] == len(FOLDERS) + 2 and done["failed"] == 0
        assert done["proofs"] == {"folder": len(FOLDERS), "written-md5": 2}
        assert done["skipped_by_reason"] == {"destination-folder": 1, "forbidden": 1}
        assert _folders(out) == set(FOLDERS)
        assert (out / "full" / "x.txt").read_bytes() == b"x"
        assert not (out / "locked").exists() and not (out / "todest").exists()

        again = _json("copy", str(src), str(out), "--skip-errors", "forbidden", env=env)
        assert (again["copied"], again["skipped_by_reason"].get("identical")) == (
            0, len(FOLDERS) + 2), again

        v = _json("verify", str(src), str(out), "--report", str(tmp_path / "v1"), env=env)
        assert (v["verified"], v["differences"]) == (len(FOLDERS) + 2, 0), v
        assert v["proofs"]["folder"] == len(FOLDERS)
        shutil.rmtree(out / "a" / "e" / "f")
        gone = _json("verify", str(src), str(out), "--report", str(tmp_path / "v2"),
                     env=env, code=1)
        assert (gone["missing"], gone["proofs"]["folder"]) == (1, len(FOLDERS) - 1), gone
        assert "a/e/f/,missing" in (tmp_path / "v2.csv").read_text()

        (src / "todest").unlink()  # (a link into the other copies' destination from here)
        none = _json("copy", str(src), str(tmp_path / "out2"), "--no-empty-dirs",
                     "--skip-errors", "forbidden", env=env)
        assert none["copied"] == 2 and _folders(tmp_path / "out2") == set()

        scan = _json("scan", str(src), str(tmp_path / "out3"), env=env)
        [found] = [f for f in scan["findings"] if f["kind"] == "empty-folder"]
        assert (found["objects"], found["examples"]) == (len(FOLDERS), FOLDERS)
        assert found["advice"].startswith("kept as directories by default")
    finally:
        (src / "locked").chmod(0o755)


def test_run_and_sync_make_the_empty_folders(tmp_path: Path) -> None:
    env = servers.clean_env()
    src, _ = _source(tmp_path)
    (src / "todest").unlink()  # (it leads to another destination: a dangling link here)
    (src / "locked").chmod(0o755)
    db = f"sqlite:///{tmp_path}/c.db"
    for job, kind, extra in (("r", "run", ["--partition-by", "auto", "--target-objects", "2"]),
                             ("s", "sync", [])):
        out = tmp_path / f"out-{job}"
        p = lakeshift("plan", str(src), str(out), "--job", job, "--db", db, *extra, env=env)
        assert p.returncode == 0, p.stderr
        p = lakeshift(kind, "--job", job, "--db", db, env=env)
        assert p.returncode == 0, p.stderr
        assert _folders(out) >= set(FOLDERS), (kind, _folders(out))


def test_local_to_a_flat_account_makes_folder_marker_blobs_only_when_asked(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    src, _ = _source(tmp_path)
    (src / "todest").unlink()
    (src / "locked").rmdir()
    plain = _json("copy", str(src), f"az://{container}/p/", env=cli_env)
    assert plain["copied"] == 2 and set(blobs(blob_service, container, "p/")) == {
        "p/full/x.txt", "p/top.txt"}

    asked = _json("copy", str(src), f"az://{container}/m/", "--empty-dirs", env=cli_env)
    assert asked["proofs"] == {"folder": len(FOLDERS), "service-md5": 2}, asked
    made = blobs(blob_service, container, "m/")
    markers = {"m/" + f.rstrip("/") for f in FOLDERS}
    assert set(made) == markers | {"m/full/x.txt", "m/top.txt"}
    for name in markers:
        assert made[name].size == 0 and made[name].metadata == {"hdi_isfolder": "true"}
    again = _json("copy", str(src), f"az://{container}/m/", "--empty-dirs", env=cli_env)
    assert (again["copied"], again["skipped"]) == (0, len(FOLDERS) + 2), again
    # verify as the copy was run (--empty-dirs) proves the markers too; without it, a flat
    # account's folders are not checked (its default, as the copy's).
    v = _json("verify", str(src), f"az://{container}/m/", "--empty-dirs", "--report",
              str(tmp_path / "v"), env=cli_env)
    assert (v["verified"], v["differences"]) == (len(FOLDERS) + 2, 0), v
    assert v["proofs"] == {"folder": len(FOLDERS), "read-md5": 2}, v
    blob_service.get_blob_client(container, "m/a/e/f").delete_blob()
    gone = _json("verify", str(src), f"az://{container}/m/", "--empty-dirs", "--report",
                 str(tmp_path / "v2"), env=cli_env, code=1)
    assert gone["missing"] == 1 and "a/e/f/,missing" in (tmp_path / "v2.csv").read_text()
    plain_v = _json("verify", str(src), f"az://{container}/m/", "--report",
                    str(tmp_path / "v3"), env=cli_env)
    assert (plain_v["verified"], plain_v["differences"]) == (2, 0), plain_v
