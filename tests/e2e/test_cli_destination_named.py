"""Names a local source is given rather than walks to, that lead to its local destination
(README "local sources", the destination-folder rule): a `sync --files-from` key that is,
or goes through, a link to the destination folder or into it, and a `--prefix` below such
a link — through the CLI, as a user runs it.  Each is kept out as the walk keeps the link
out: nothing of the destination is read, nor copied into the destination."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

from tests.e2e.cli import lakeshift, one_clear_line


def _lake(tmp_path: Path) -> tuple[Path, Path]:
    """``data`` holding ``a.txt``, ``x.txt``, ``sub/f.txt`` and three links into ``out``,
    the destination: ``link -> ../out`` (the folder itself), ``into -> ../out/sub`` (a
    folder inside it) and ``file -> ../out/x.txt`` (a file inside it)."""
    src, dst = tmp_path / "data", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    for name in ("a.txt", "x.txt", "sub/f.txt"):
        (src / name).write_bytes(name.encode())
        an_hour_ago = time.time() - 3600  # inside a sync's first window, even with --lag 0s
        os.utime(src / name, (an_hour_ago, an_hour_ago))
    (src / "link").symlink_to("../out")
    (src / "into").symlink_to("../out/sub")
    (src / "file").symlink_to("../out/x.txt")
    return src, dst


def _files(dst: Path) -> list[str]:
    return sorted(str(f.relative_to(dst)) for f in dst.rglob("*"))


def _rows(env: dict[str, str], db: str, job: str, run: int) -> dict[str, tuple[str, str, str]]:
    f = lakeshift("failures", "--job", job, "--db", db, "--run", str(run), env=env)
    assert f.returncode == 0, f.stderr
    return {r["object_key"]: (r["error_kind"], r["skipped"], r["message"])
            for r in csv.DictReader(io.StringIO(f.stdout))}


def test_files_from_keys_through_a_link_to_the_destination_are_skipped_not_copied(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``sync --files-from`` took ``link/x.txt`` as the file ``out/x.txt`` (its HEAD and
    its read went through the link) and copied it to ``out/link/x.txt``; so with
    ``link/sub/f.txt`` and ``into/f.txt``: the destination copied into itself, which the
    walk never does.  Each such key is now skipped as destination-folder, as the listing
    pass skips the links, naming the link it goes through; a plain key is still looked
    at (identical: skipped)."""
    src, dst = _lake(tmp_path)
    db = f"sqlite:///{tmp_path}/jobs.db"
    p = lakeshift("sync", str(src), str(dst), "--job", "s", "--db", db, "--lag", "0s",
                  "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["copied"] == 3, p.stdout
    want = ["a.txt", "sub", "sub/f.txt", "x.txt"]
    assert _files(dst) == want
    keys = tmp_path / "keys.txt"
    keys.write_text("link/x.txt\nlink/sub/f.txt\ninto/f.txt\nfile\na.txt\n")
    p = lakeshift("sync", "--job", "s", "--db", db, "--files-from", str(keys), "--lag", "0s",
                  "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["skipped"], s["failed"]) == (0, 5, 0), s
    assert _files(dst) == want
    rows = _rows(local_env, db, "s", 2)
    assert {k: v[:2] for k, v in rows.items()} == {
        k: ("destination-folder", "True")
        for k in ("link/x.txt", "link/sub/f.txt", "into/f.txt", "file")}, rows
    assert f"{src}/link: leads to the destination folder {dst}: not followed" \
        in rows["link/x.txt"][2], rows
    assert f"{src}/into: leads to {os.path.realpath(dst / 'sub')}, inside the destination " \
        f"folder {dst}" in rows["into/f.txt"][2], rows


def test_plan_refuses_a_prefix_below_a_link_to_the_destination_with_the_runs_line(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``plan --prefix link/`` (``link -> ../out``) was planned, and then every run failed
    that partition with the local store's destination-folder line.  The plan refuses it
    now, with that line (exit 2, nothing written), for a prefix through such a link too
    (``link/sub/``) and one into the destination (``into/``); a string prefix in the
    source's top folder (``lin``, which the walk lists the link under as one skipped
    entry) is planned as before."""
    src, dst = _lake(tmp_path)
    dst.mkdir()
    db = f"sqlite:///{tmp_path}/jobs.db"
    for prefix, line in [
            ("link/", f"{src}/link: leads to the destination folder {dst}: not followed"),
            ("link/sub/", f"{src}/link: leads to the destination folder {dst}: not followed"),
            ("into/", f"{src}/into: leads to {os.path.realpath(dst / 'sub')}, inside the "
                      "destination folder")]:
        p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, "--prefix",
                      "sub/", "--prefix", prefix, env=local_env)
        assert p.returncode == 2, (prefix, p.stdout + p.stderr)
        said = one_clear_line(p)
        assert f"partition {prefix}: {line}" in said and "leave that prefix out" in said, said
        assert not (tmp_path / "jobs.db").exists(), prefix
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, "--prefix", "lin",
                  env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_partition_below_a_link_to_the_destination_fails_instead_of_copying_it(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A partition whose prefix became a link to the destination after it was planned
    (``link -> ../out``) walked the destination from inside the link: ``run`` copied the
    destination's files into ``out/link/``, one level deeper each run.  The walk never
    starts below such a link: that partition fails, naming the link, and the destination
    is left alone; the other partitions copy as before."""
    src, dst = _lake(tmp_path)
    db = f"sqlite:///{tmp_path}/jobs.db"
    dst.mkdir()
    (dst / "old.txt").write_bytes(b"there before")
    (dst / "sub").mkdir()
    (dst / "sub" / "old.txt").write_bytes(b"there before")
    (src / "link").unlink()
    (src / "into").unlink()
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, "--prefix", "sub/",
                  "--prefix", "link/", "--prefix", "into/", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    (src / "link").symlink_to("../out")  # (plan refuses them: test_plan_refuses_…)
    (src / "into").symlink_to("../out/sub")
    for run in range(2):
        r = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env)
        assert r.returncode == 1, (run, r.stdout + r.stderr)
        s = json.loads(r.stdout)
        assert s["copied"] == (1 if run == 0 else 0), (run, s)
        # (labelled "#N file:///…/data/PREFIX")
        errors = {e["partition"].rpartition("/data/")[2]: e["error"] for e in s["errors"]}
        assert sorted(errors) == ["into/", "link/"], (run, s)
        assert f"{src}/link: leads to the destination folder {dst}: not followed" \
            in errors["link/"], errors
        assert f"{src}/into: leads to {os.path.realpath(dst / 'sub')}, inside the " \
            "destination folder" in errors["into/"], errors
        assert _files(dst) == ["old.txt", "sub", "sub/f.txt", "sub/old.txt"], run


def test_a_source_naming_one_link_into_the_destination_skips_it(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``copy ./data/file ./out`` (``file -> ../out/x.txt``): the source names that one
    entry, which the copy skips as destination-folder, as a copy of all ``data`` does —
    its look-up, which now says destination-folder, does not end the copy."""
    src, dst = _lake(tmp_path)
    dst.mkdir()
    (dst / "x.txt").write_bytes(b"there before")
    p = lakeshift("copy", str(src / "file"), str(dst), "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["failed"], s["skipped_by_reason"]) == (
        0, 0, {"destination-folder": 1}), s
    assert [(f["key"], f["kind"], f["skipped"]) for f in s["failures"]] == [
        ("file", "destination-folder", True)], s
    assert _files(dst) == ["x.txt"]
