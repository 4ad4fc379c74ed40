"""Local sources a user really has (symlink loops, unreadable files and folders), globs,
and a destination inside its source — through the CLI, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest

from tests.e2e.cli import lakeshift, obeying_file_modes, one_clear_line


def _tree(src: Path) -> None:
    (src / "d" / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hello")
    (src / "d" / "sub" / "f.txt").write_bytes(b"deep")
    (src / "d" / "sub" / "up").symlink_to("..")          # a folder above it: a loop
    (src / "loop1").symlink_to("loop2")                    # two links naming each other
    (src / "loop2").symlink_to("loop1")


def test_symlink_loops_are_skipped_and_recorded_and_the_rest_is_copied(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    p = lakeshift("copy", str(src), str(dst), "--json", env=local_env)
    assert p.returncode == 0, p.stderr  # a loop is not a failure: nothing could be copied
    s = json.loads(p.stdout)
    assert (s["copied"], s["failed"], s["skipped"]) == (2, 0, 3)
    assert s["skipped_by_reason"] == {"symlink-loop": 3}
    why = {f["key"]: (f["kind"], f["message"], f["skipped"]) for f in s["failures"]}
    assert set(why) == {"d/sub/up", "loop1", "loop2"}
    assert all(kind == "symlink-loop" and "symlink loop" in msg and skipped
               for kind, msg, skipped in why.values())
    assert (dst / "a.txt").read_bytes() == b"hello"
    assert (dst / "d" / "sub" / "f.txt").read_bytes() == b"deep"
    assert not (dst / "d" / "sub" / "up").exists()
    # verify agrees: not copied on purpose (unverifiable), not missing.
    v = lakeshift("verify", str(src), str(dst), "--report", str(tmp_path / "v"), "--json",
                  env=local_env)
    assert v.returncode == 0, v.stdout + v.stderr
    got = json.loads(v.stdout)
    assert (got["verified"], got["missing"], got["unverifiable"]) == (2, 0, 3)
    assert got["unverifiable_reasons"] == {"not copied on purpose: symlink-loop": 3}
    # A job records them in its failure log as skipped, and its partition succeeds.
    db = f"sqlite:///{tmp_path}/loops.db"
    assert lakeshift("plan", str(src), str(tmp_path / "dst2"), "--job", "j", "--db", db,
                     env=local_env).returncode == 0
    r = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["skipped_by_reason"] == {"symlink-loop": 3}
    f = lakeshift("failures", "--job", "j", "--db", db, env=local_env)
    rows = list(csv.DictReader(io.StringIO(f.stdout)))
    assert sorted((r["object_key"], r["error_kind"], r["skipped"]) for r in rows) == [
        ("d/sub/up", "symlink-loop", "True"), ("loop1", "symlink-loop", "True"),
        ("loop2", "symlink-loop", "True")]
    # A dry run says so too (it said "would copy"), and still writes nothing.
    dry = lakeshift("copy", str(src), str(tmp_path / "dst3"), "--dry-run", "--json",
                    env=local_env)
    assert dry.returncode == 0, dry.stderr
    s = json.loads(dry.stdout)
    assert (s["copied"], s["skipped_by_reason"]) == (2, {"symlink-loop": 3}), s
    assert not (tmp_path / "dst3").exists()


def test_dangling_symlinks_are_their_own_error_kind(local_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "b.lnk").symlink_to("nowhere.txt")              # a link to nothing
    (src / "d" / "c.lnk").symlink_to(tmp_path / "gone")    # absolute, to nothing
    # A failure by default (not silently dropped, not "missing"), the rest copied.
    p = lakeshift("copy", str(src), str(dst), "--json", env=local_env)
    assert p.returncode == 1, p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["failed"], s["failed_by_kind"]) == (1, 2, {"dangling-link": 2})
    why = {f["key"]: (f["kind"], f["message"]) for f in s["failures"]}
    assert set(why) == {"b.lnk", "d/c.lnk"}
    assert why["b.lnk"][0] == "dangling-link" and "nowhere.txt" in why["b.lnk"][1]
    assert (dst / "a.txt").read_bytes() == b"a"
    # Skippable by its kind (and only by it: "missing" does not cover it).
    miss = lakeshift("copy", str(src), str(dst), "--json", "--skip-errors", "missing",
                     env=local_env)
    assert miss.returncode == 1, miss.stderr
    skip = lakeshift("copy", str(src), str(dst), "--json", "--skip-errors", "dangling-link",
                     env=local_env)
    assert skip.returncode == 0, skip.stderr
    assert json.loads(skip.stdout)["skipped_by_reason"] == {"dangling-link": 2,
                                                            "identical": 1}
    # verify names it: a dangling link, not a missing object.
    v = lakeshift("verify", str(src), str(dst), "--report", str(tmp_path / "v"), "--json",
                  env=local_env)
    got = json.loads(v.stdout)
    assert (got["verified"], got["missing"], got["unverifiable"]) == (1, 0, 2), got
    assert list(got["unverifiable_reasons"]) == ["dangling-link"]
    assert v.returncode == 0, v.stderr
    # A job records them in its failure log under that kind.
    db = f"sqlite:///{tmp_path}/links.db"
    assert lakeshift("plan", str(src), str(tmp_path / "dst2"), "--job", "j", "--db", db,
                     "--skip-errors", "dangling-link", env=local_env).returncode == 0
    r = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env)
    assert r.returncode == 0, r.stderr
    f = lakeshift("failures", "--job", "j", "--db", db, env=local_env)
    rows = list(csv.DictReader(io.StringIO(f.stdout)))
    assert sorted((r["object_key"], r["error_kind"], r["skipped"]) for r in rows) == [
        ("b.lnk", "dangling-link", "True"), ("d/c.lnk", "dangling-link", "True")]


def test_unreadable_file_and_folder_are_forbidden(local_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "locked").mkdir(parents=True)
    (src / "locked" / "inner.txt").write_bytes(b"x")
    (src / "ok.txt").write_bytes(b"ok")
    (src / "secret.txt").write_bytes(b"s")
    os.chmod(src / "secret.txt", 0)
    os.chmod(src / "locked", 0)
    try:
        p = lakeshift("copy", str(src), str(dst), "--json", env=local_env,
                      prefix=obeying_file_modes())
        assert p.returncode == 1, p.stderr
        s = json.loads(p.stdout)
        why = {f["key"]: (f["kind"], f["message"]) for f in s["failures"]}
        assert why["secret.txt"][0] == "forbidden" and "cannot read" in why["secret.txt"][1]
        assert why["locked"][0] == "forbidden" and "cannot list" in why["locked"][1]
        assert (dst / "ok.txt").read_bytes() == b"ok"
        skip = lakeshift("copy", str(src), str(dst), "--json", "--skip-errors", "forbidden",
                         env=local_env, prefix=obeying_file_modes())
        assert skip.returncode == 0, skip.stderr
        assert json.loads(skip.stdout)["skipped_errors"] == 2
    finally:
        os.chmod(src / "locked", 0o755)
        os.chmod(src / "secret.txt", 0o644)


@pytest.mark.parametrize("option,glob,code,needle", [
    ("--include", "a[z-a]b", 2, "can match nothing"),
    ("--include", "a[]b", 2, "is not a valid glob"),
    ("--exclude", "a[]b", 2, "is not a valid glob"),
    ("--include", "a[[]]b", 0, "")])
def test_a_glob_that_cannot_work_is_exit_2(local_env: dict[str, str], tmp_path: Path,
                                           option: str, glob: str, code: int,
                                           needle: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a[]b").write_bytes(b"literal")
    p = lakeshift("copy", str(src), str(tmp_path / "dst"), option, glob, env=local_env)
    assert p.returncode == code, p.stderr
    if code == 2:
        assert needle in one_clear_line(p)
        assert not (tmp_path / "dst").exists()
    else:
        assert (tmp_path / "dst" / "a[]b").read_bytes() == b"literal"


def test_destination_inside_the_source_is_refused(local_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.symlink(src, tmp_path / "alias")
    for dst in (src / "sub", tmp_path / "alias" / "sub"):
        p = lakeshift("copy", str(src), str(dst), env=local_env)
        assert p.returncode == 2, p.stderr
        assert "is inside the source" in one_clear_line(p)
    assert sorted(os.listdir(src)) == ["a.txt"]  # nothing written, nothing nested


def test_plan_auto_and_run_copy_root_files_on_both_sides_of_folders(
        local_env: dict[str, str], tmp_path: Path) -> None:
    # Root-level files that sort before, between and after folders: a chunk of them around
    # a folder once ended its range at the folder and lost the files after it.
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = {"a/1": b"a1", "a/2": b"a2", "m": b"m", "n": b"n", "z/1": b"z1", "z/2": b"z2",
             "zz": b"zz", "zzz": b"zzz"}
    for key, body in files.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        (src / key).write_bytes(body)
    db = f"sqlite:///{tmp_path}/auto.db"
    for target in ("2", "3"):
        job = f"auto{target}"
        p = lakeshift("plan", str(src), str(dst / job), "--job", job, "--db", db,
                      "--partition-by", "auto", "--target-objects", target, env=local_env)
        assert p.returncode == 0, p.stderr
        r = lakeshift("run", "--job", job, "--db", db, "--json", env=local_env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["copied"] == len(files)
        copied = {str(f.relative_to(dst / job)): f.read_bytes()
                  for f in (dst / job).rglob("*") if f.is_file()}
        assert copied == files


def test_plan_refuses_a_destination_inside_its_source(local_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    src, other = tmp_path / "d", tmp_path / "o"
    src.mkdir()
    other.mkdir()
    (src / "a.txt").write_bytes(b"a")
    (other / "b.txt").write_bytes(b"b")
    db = tmp_path / "p.db"
    # Inside the second of two sources: refused, and nothing planned.
    p = lakeshift("plan", str(other), str(src), str(src / "sub"), "--job", "j", "--db",
                  f"sqlite:///{db}", env=local_env)
    assert p.returncode == 2, p.stderr
    assert "is inside the source" in one_clear_line(p)
    assert not db.exists()


@pytest.mark.parametrize("src,dst", [
    ("az://cnt/raw", "abfss://cnt@acct.dfs.core.windows.net/raw/x"),
    ("https://acct.blob.core.windows.net/cnt/raw", "az://cnt/raw/x"),
    ("s3://bkt/raw", "s3://bkt/raw/x"),
])
def test_copy_plan_and_sync_refuse_a_destination_inside_its_source_in_any_spelling(
        local_env: dict[str, str], tmp_path: Path, src: str, dst: str) -> None:
    """``az://`` takes its account from the credentials, ``abfss://`` and ``https://`` name
    it: one container.  An S3 bucket at the environment's endpoint is the one a flag
    names.  Refused before any request (the endpoints are a closed loopback port)."""
    import base64

    env = {**local_env, "AZURE_STORAGE_ACCOUNT": "acct",
           "AZURE_STORAGE_ACCOUNT_KEY": base64.b64encode(b"k" * 64).decode(),
           "AZURE_STORAGE_BLOB_ENDPOINT": "http://127.0.0.1:9/acct",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    flags = ("--s3-endpoint", "http://127.0.0.1:9/", "--allow-http")
    db = tmp_path / "j.db"
    for args in (("copy", src, dst), ("plan", src, dst, "--job", "j"),
                 ("sync", src, dst, "--job", "j")):
        with_db = ("--db", f"sqlite:///{db}") if args[0] != "copy" else ()
        p = lakeshift(*args, *with_db, *(flags if src.startswith("s3") else ()), env=env,
                      timeout=60)
        assert p.returncode == 2, (args, p.stderr)
        assert "is inside the source" in one_clear_line(p), args
        assert not db.exists()


def _linked_to_destination(tmp_path: Path, name: str, into: str = "") -> tuple[Path, Path]:
    """``tmp_path/NAME`` holding ``a.txt``, ``d/b.txt`` and ``link -> ../NAME-out`` (a
    symlink to the destination folder; with ``into``, to ``../NAME-out/INTO``, inside it);
    the source and the destination."""
    src, dst = tmp_path / name, tmp_path / f"{name}-out"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hi")
    (src / "d" / "b.txt").write_bytes(b"deep")
    (src / "link").symlink_to(f"../{name}-out" + (f"/{into}" if into else ""))
    an_hour_ago = time.time() - 3600  # inside a sync's first window, even with --lag 0s
    for f in (src / "a.txt", src / "d" / "b.txt"):
        os.utime(f, (an_hour_ago, an_hour_ago))
    return src, dst


def _files(dst: Path) -> list[str]:
    return sorted(str(f.relative_to(dst)) for f in dst.rglob("*"))


def _skips(env: dict[str, str], db: str, job: str) -> list[tuple[str, str, str]]:
    f = lakeshift("failures", "--job", job, "--db", db, env=env)
    assert f.returncode == 0, f.stderr
    return sorted((r["object_key"], r["error_kind"], r["skipped"])
                  for r in csv.DictReader(io.StringIO(f.stdout)))


def test_a_symlink_to_the_destination_is_skipped_not_copied_into_itself(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``data/link -> ../out``: each copy listed the destination through the link and
    copied it into itself, one level deeper each run (out/link/a.txt, out/link/link/…).
    The link is one entry, skipped with its reason, every run; verify agrees."""
    src, dst = _linked_to_destination(tmp_path, "data")
    for run in range(3):
        p = lakeshift("copy", str(src), str(dst), "--json", env=local_env)
        assert p.returncode == 0, p.stdout + p.stderr
        s = json.loads(p.stdout)
        assert s["skipped_by_reason"].get("destination-folder") == 1, (run, s)
        assert (s["copied"], s["failed"]) == ((2, 0) if run == 0 else (0, 0)), (run, s)
        why = {f["key"]: (f["kind"], f["skipped"]) for f in s["failures"]}
        assert why == {"link": ("destination-folder", True)}, (run, why)
        assert "destination folder" in s["failures"][0]["message"]
        assert _files(dst) == ["a.txt", "d", "d/b.txt"], run
    text = lakeshift("copy", str(src), str(dst), "--progress", "none", env=local_env)
    assert text.returncode == 0, text.stderr
    assert "1 destination folder" in text.stdout + text.stderr
    v = lakeshift("verify", str(src), str(dst), "--report", str(tmp_path / "v"), "--json",
                  env=local_env)
    assert v.returncode == 0, v.stdout + v.stderr
    got = json.loads(v.stdout)
    assert (got["verified"], got["missing"], got["unverifiable"]) == (2, 0, 1), got
    assert got["unverifiable_reasons"] == {"not copied on purpose: destination-folder": 1}


def test_a_planned_job_skips_a_symlink_to_its_destination(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """The same for ``run`` (automatic partitions: the folder listing that cuts them saw
    ``link/`` as a folder), into a destination that already holds a file (so that the link
    leads somewhere from the plan on)."""
    db = f"sqlite:///{tmp_path}/jobs.db"
    src, dst = _linked_to_destination(tmp_path, "planned")
    dst.mkdir()
    (dst / "old.txt").write_bytes(b"there before")
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, "--partition-by",
                  "auto", "--target-objects", "1", env=local_env)
    assert p.returncode == 0, p.stderr
    r = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env)
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(r.stdout)
    assert s["skipped_by_reason"] == {"destination-folder": 1}, s
    assert s["copied"] == 2, s
    assert _files(dst) == ["a.txt", "d", "d/b.txt", "old.txt"]
    assert _skips(local_env, db, "j") == [("link", "destination-folder", "True")]
    v = lakeshift("verify", "--job", "j", "--db", db, "--report", str(tmp_path / "v"),
                  "--json", env=local_env)
    got = json.loads(v.stdout)
    assert got["unverifiable_reasons"] == {"not copied on purpose: destination-folder": 1}, got
    assert (got["verified"], got["missing"]) == (2, 0), got


def test_a_sync_skips_a_symlink_to_its_destination(local_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    """The same for ``sync``, pass after pass."""
    db = f"sqlite:///{tmp_path}/jobs.db"
    src, dst = _linked_to_destination(tmp_path, "synced")
    dst.mkdir()
    (dst / "old.txt").write_bytes(b"there before")
    for run in range(3):
        p = lakeshift("sync", str(src), str(dst), "--job", "s", "--db", db, "--lag", "0s",
                      "--json", env=local_env)
        assert p.returncode == 0, (run, p.stdout + p.stderr)
        assert json.loads(p.stdout)["failed"] == 0
        assert _files(dst) == ["a.txt", "d", "d/b.txt", "old.txt"], run
    assert ("link", "destination-folder", "True") in _skips(local_env, db, "s")


def test_a_link_into_a_subfolder_of_the_destination_is_skipped_every_run(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A new user's report, as they ran it: ``data/a/into -> ../../out/a`` (a folder inside
    the destination, not the destination itself) nested one level deeper each run
    (out/a/into/into/…/f1.txt, exit 0, verify never passing), and on the first run, when
    out/a was not there yet at listing time, failed as ``[missing] …: is a directory``.
    Now it is one entry skipped as destination-folder on every run, and verify passes."""
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "data" / "a" / "f1.txt").write_bytes(b"one\n")
    (tmp_path / "data" / "a" / "into").symlink_to("../../out/a")
    here = ("env", "-C", str(tmp_path))
    for run in range(4):
        p = lakeshift("copy", "./data", "./out", "--json", env=local_env, prefix=here)
        assert p.returncode == 0, (run, p.stdout + p.stderr)
        s = json.loads(p.stdout)
        assert s["skipped_by_reason"].get("destination-folder") == 1, (run, s)
        assert (s["copied"], s["failed"]) == ((1, 0) if run == 0 else (0, 0)), (run, s)
        why = {f["key"]: (f["kind"], f["skipped"]) for f in s["failures"]}
        assert why == {"a/into": ("destination-folder", True)}, (run, why)
        assert "inside the destination folder" in s["failures"][0]["message"]
        assert _files(tmp_path / "out") == ["a", "a/f1.txt"], run
    v = lakeshift("verify", "./data", "./out", "--report", str(tmp_path / "v"), "--json",
                  env=local_env, prefix=here)
    assert v.returncode == 0, v.stdout + v.stderr
    got = json.loads(v.stdout)
    assert (got["verified"], got["missing"], got["unverifiable"]) == (1, 0, 1), got
    assert got["unverifiable_reasons"] == {"not copied on purpose: destination-folder": 1}


def test_a_dry_run_and_copies_into_a_new_destination_skip_every_link_into_it(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """Before the destination exists every link to where it will be dangles: a dry run said
    it "would copy" them (the real copy skips them); the first copy failed the link into
    ``out/a`` (dangling-link, or "is a directory" by the time it was read) and a link to a
    folder the copy never makes (``out/reports``) as dangling-link, and read the file
    ``out/a/f1.txt`` through its link once it was there.  A dry run and every copy now skip
    all four as destination-folder; the dry run writes nothing."""
    src, dst = tmp_path / "data", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    (src / "a" / "f1.txt").write_bytes(b"one\n")
    (src / "a" / "into").symlink_to("../../out/a")
    (src / "file").symlink_to("../out/a/f1.txt")
    (src / "later").symlink_to("../out/reports")
    (src / "whole").symlink_to("../out")
    links = {k: ("destination-folder", True) for k in ("a/into", "file", "later", "whole")}
    text = lakeshift("copy", str(src), str(dst), "--dry-run", "--progress", "none",
                     env=local_env)
    assert text.returncode == 0, text.stderr
    said = " ".join(text.stdout.split())
    assert "would copy 1 object" in said and "(4 destination folders)" in said, text.stdout
    for dry, copied in ((True, 1), (False, 1), (False, 0), (True, 0)):
        p = lakeshift("copy", str(src), str(dst), "--json", *(["--dry-run"] if dry else []),
                      env=local_env)
        assert p.returncode == 0, (dry, p.stdout + p.stderr)
        s = json.loads(p.stdout)
        assert s["skipped_by_reason"].get("destination-folder") == 4, (dry, s)
        assert (s["copied"], s["failed"]) == (copied, 0), (dry, s)
        assert {f["key"]: (f["kind"], f["skipped"]) for f in s["failures"]} == links, dry
        assert dst.exists() is not (dry and copied), dry
    assert _files(dst) == ["a", "a/f1.txt"]


def test_a_partitioned_run_skips_a_link_into_a_destination_not_there_at_plan_time(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``run`` with automatic partitions into a destination that does not exist when it is
    planned: ``link -> ../parts-out/d`` dangled when the partitions were cut and was a
    folder (the copy of ``d``) by the time it was read, a failure; a job planned again
    later (the folder there now) skips it too."""
    db = f"sqlite:///{tmp_path}/jobs.db"
    src, dst = _linked_to_destination(tmp_path, "parts", into="d")
    for job, copied in (("j", 2), ("again", 0)):
        p = lakeshift("plan", str(src), str(dst), "--job", job, "--db", db,
                      "--partition-by", "auto", "--target-objects", "1", env=local_env)
        assert p.returncode == 0, p.stderr
        r = lakeshift("run", "--job", job, "--db", db, "--json", env=local_env)
        assert r.returncode == 0, (job, r.stdout + r.stderr)
        s = json.loads(r.stdout)
        assert s["skipped_by_reason"].get("destination-folder") == 1, (job, s)
        assert (s["copied"], s["failed"]) == (copied, 0), (job, s)
        assert _files(dst) == ["a.txt", "d", "d/b.txt"], job
        assert ("link", "destination-folder", "True") in _skips(local_env, db, job)


def test_a_sync_skips_a_link_into_a_subfolder_of_its_destination(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``sync``, pass after pass: the link to the destination's ``d/`` (made by the first
    pass) is skipped each time, never walked into."""
    db = f"sqlite:///{tmp_path}/jobs.db"
    src, dst = _linked_to_destination(tmp_path, "synced", into="d")
    for run in range(3):
        p = lakeshift("sync", str(src), str(dst), "--job", "s", "--db", db, "--lag", "0s",
                      "--json", env=local_env)
        assert p.returncode == 0, (run, p.stdout + p.stderr)
        assert json.loads(p.stdout)["failed"] == 0, run
        assert _files(dst) == ["a.txt", "d", "d/b.txt"], run
    assert ("link", "destination-folder", "True") in _skips(local_env, db, "s")


def _linked_into_destination(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """``tmp_path/NAME`` holding ``a.txt``, ``sub/b.txt``, ``sub/link -> ../../NAME-out/sub``
    and ``into -> ../NAME-out/sub`` (symlinks to a folder *inside* the destination: the
    copy of ``sub``), beside a destination whose ``sub/`` holds ``old.txt`` already (so
    that the links lead somewhere from the first run on)."""
    src, dst = tmp_path / name, tmp_path / f"{name}-out"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hi")
    (src / "sub" / "b.txt").write_bytes(b"deep")
    (src / "sub" / "link").symlink_to(f"../../{name}-out/sub")
    (src / "into").symlink_to(f"../{name}-out/sub")
    (dst / "sub").mkdir(parents=True)
    (dst / "sub" / "old.txt").write_bytes(b"there before")
    return src, dst


def test_a_symlink_into_a_folder_of_the_destination_is_skipped(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``data/sub/link -> ../../out/sub``: the walk met no folder that *is* the destination,
    so it copied out/sub into out/sub/link, and the next run that again into
    out/sub/link/link, one level deeper each run (and ``into`` copied out/sub to out/into).
    A link to any folder inside the destination is skipped as one to the destination itself
    is; verify agrees."""
    src, dst = _linked_into_destination(tmp_path, "data")
    want = ["a.txt", "sub", "sub/b.txt", "sub/old.txt"]
    for run in range(3):
        p = lakeshift("copy", str(src), str(dst), "--json", env=local_env)
        assert p.returncode == 0, p.stdout + p.stderr
        s = json.loads(p.stdout)
        assert s["skipped_by_reason"].get("destination-folder") == 2, (run, s)
        why = {f["key"]: (f["kind"], f["skipped"]) for f in s["failures"]}
        assert why == {"sub/link": ("destination-folder", True),
                       "into": ("destination-folder", True)}, (run, why)
        assert all(f"leads to {os.path.realpath(dst / 'sub')}, inside the destination "
                   f"folder {dst}" in f["message"] for f in s["failures"]), s
        assert _files(dst) == want, run
    v = lakeshift("verify", str(src), str(dst), "--report", str(tmp_path / "v"), "--json",
                  env=local_env)
    got = json.loads(v.stdout)
    assert got["unverifiable_reasons"] == {"not copied on purpose: destination-folder": 2}, got
    assert (got["verified"], got["missing"]) == (2, 0), got


def test_a_planned_job_skips_a_symlink_into_a_folder_of_its_destination(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """The same for ``run`` with automatic partitions: the folder listing that cuts them
    named ``into/`` a folder, and its partition walked the destination from inside the
    link."""
    db = f"sqlite:///{tmp_path}/jobs.db"
    src, dst = _linked_into_destination(tmp_path, "planned")
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, "--partition-by",
                  "auto", "--target-objects", "1", env=local_env)
    assert p.returncode == 0, p.stderr
    r = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["skipped_by_reason"] == {"destination-folder": 2}
    assert _files(dst) == ["a.txt", "sub", "sub/b.txt", "sub/old.txt"]
    assert _skips(local_env, db, "j") == [("into", "destination-folder", "True"),
                                          ("sub/link", "destination-folder", "True")]


def test_tune_samples_what_a_copy_copies_and_skips_what_it_skips(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``tune ./data ./out`` with ``data/link -> ../out``: its sample was listed through the
    link (the destination's 20 files, which the copy never copies); and an entry the copy
    skips (that link, a symlink loop) failed every trial: "every trial failed", exit 4."""
    src, dst = tmp_path / "data", tmp_path / "out"
    src.mkdir()
    dst.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"x" * (i + 1))
    for i in range(20):
        (dst / f"old{i}.txt").write_bytes(b"there before")
    (src / "link").symlink_to("../out")
    (src / "loop").symlink_to("loop")
    p = lakeshift("tune", str(src), str(dst), "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    got = json.loads(p.stdout)
    # The 3 files and the 2 entries the copy skips; none of the destination's files.
    assert (got["sample_objects"], got["sample_bytes"]) == (5, 6), got
    assert all(t["failed"] == 0 for t in got["trials"]), got["trials"]
    assert sorted(os.listdir(dst)) == sorted(f"old{i}.txt" for i in range(20))
