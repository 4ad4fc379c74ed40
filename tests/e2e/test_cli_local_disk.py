"""What the docs promise about local-disk sources and destinations, from the CLI as a user
runs it: a folder lakeshift may not read is a `forbidden` failure (dry run, job, rerun,
auto partitions) unless skipped; `sync --files-from` asks the source before refusing a
name; `check` (and so `init`) takes a local destination folder the copy will create; a copy
to local disk is proven `written-md5`, not by a service that is not there."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.cli import BIN, lakeshift, obeying_file_modes


def _json(*args: str, env: dict[str, str], code: int = 0, as_owner: bool = False) -> Any:
    p = lakeshift(*args, "--json", env=env, prefix=obeying_file_modes() if as_owner else ())
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def _failures(env: dict[str, str], db: str, job: str, *args: str
              ) -> list[tuple[str, str, str]]:
    p = lakeshift("failures", "--job", job, "--db", db, *args, env=env)
    assert p.returncode == 0, p.stderr
    return sorted((r["object_key"], r["error_kind"], r["skipped"])
                  for r in csv.DictReader(io.StringIO(p.stdout)))


def _locked_source(tmp_path: Path) -> Path:
    """``ok.txt``, ``z/z.txt``, ``locked/inner.txt`` (``locked`` mode 000) and ``dangle``
    (a link to nothing)."""
    src = tmp_path / "src"
    (src / "locked").mkdir(parents=True)
    (src / "z").mkdir()
    (src / "ok.txt").write_bytes(b"ok")
    (src / "z" / "z.txt").write_bytes(b"z")
    (src / "locked" / "inner.txt").write_bytes(b"inner")
    (src / "dangle").symlink_to("nowhere")
    (src / "locked").chmod(0)
    return src


def test_an_unreadable_folder_is_forbidden_in_a_dry_run_a_job_and_its_rerun(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """The dry run counted such a folder (and a link to nothing) as would-copy while the
    copy fails it; `--partition-by auto` made it a partition that `--skip-errors forbidden`
    could not skip (the planner listed into it).  Now it is one `forbidden` entry
    everywhere: failed, listed by `failures`, tried again and copied by the rerun once
    readable, or skipped when asked."""
    src = _locked_source(tmp_path)
    try:
        dry = _json("copy", str(src), str(tmp_path / "dry"), "--dry-run", env=local_env,
                    code=1, as_owner=True)
        assert (dry["copied"], dry["failed_by_kind"]) == (
            2, {"forbidden": 1, "dangling-link": 1}), dry
        why = {f["key"]: (f["kind"], f["message"], f["skipped"]) for f in dry["failures"]}
        assert why["locked"][0] == "forbidden" and "cannot list the folder" in why["locked"][1]
        assert not why["locked"][2]
        text = lakeshift("copy", str(src), str(tmp_path / "dry"), "--dry-run", env=local_env,
                         prefix=obeying_file_modes())
        assert text.returncode == 1 and "FAILED locked: [forbidden]" in text.stdout, text.stdout
        skip = _json("copy", str(src), str(tmp_path / "dry"), "--dry-run", "--skip-errors",
                     "forbidden,dangling-link", env=local_env, as_owner=True)
        assert (skip["copied"], skip["failed"], skip["skipped_by_reason"]) == (
            2, 0, {"forbidden": 1, "dangling-link": 1}), skip
        assert not (tmp_path / "dry").exists()

        # A job: failed and listed; the rerun tries it again and copies what is below it.
        db = f"sqlite:///{tmp_path}/c.db"
        dst = tmp_path / "dst"
        assert lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db,
                         "--skip-errors", "dangling-link", env=local_env).returncode == 0
        run = _json("run", "--job", "j", "--db", db, env=local_env, code=1, as_owner=True)
        assert (run["copied"], run["failed"]) == (2, 1), run
        assert _failures(local_env, db, "j") == [("dangle", "dangling-link", "True"),
                                                 ("locked", "forbidden", "False")]
        (src / "locked").chmod(0o755)
        again = _json("run", "--job", "j", "--db", db, env=local_env, as_owner=True)
        assert again["copied"] == 1, again
        assert (dst / "locked" / "inner.txt").read_bytes() == b"inner"
        assert _failures(local_env, db, "j") == [("dangle", "dangling-link", "True")]

        # Auto partitions: the folder is an entry of a range, which --skip-errors skips.
        (src / "locked").chmod(0)
        p = lakeshift("plan", str(src), str(tmp_path / "auto"), "--job", "a", "--db", db,
                      "--partition-by", "auto", "--target-objects", "1", "--skip-errors",
                      "forbidden,dangling-link", env=local_env, prefix=obeying_file_modes())
        assert p.returncode == 0, p.stdout + p.stderr
        auto = _json("run", "--job", "a", "--db", db, env=local_env, as_owner=True)
        assert (auto["copied"], auto["skipped_by_reason"]) == (
            2, {"forbidden": 1, "dangling-link": 1}), auto
    finally:
        (src / "locked").chmod(0o755)


def test_an_unreadable_file_is_forbidden_in_a_dry_run_as_in_the_copy(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """The dry run counted a file this user may not read as would-copy (it is listed with
    its size and time: a stat needs no read permission) while the copy fails it
    `forbidden`.  Now the dry run opens each local file, reading nothing, and says what
    the copy says: failed, exit 1, or skipped with `--skip-errors forbidden`."""
    src = tmp_path / "src"
    (src / "z").mkdir(parents=True)
    (src / "ok.txt").write_bytes(b"ok")
    (src / "z" / "z.txt").write_bytes(b"z")
    (src / "secret.txt").write_bytes(b"secret")
    (src / "secret.txt").chmod(0)
    try:
        dry = _json("copy", str(src), str(tmp_path / "dry"), "--dry-run", env=local_env,
                    code=1, as_owner=True)
        assert (dry["copied"], dry["failed_by_kind"]) == (2, {"forbidden": 1}), dry
        [why] = dry["failures"]
        assert (why["key"], why["kind"], why["skipped"]) == ("secret.txt", "forbidden", False)
        assert why["message"] == f"{src / 'secret.txt'}: permission denied (cannot read)", why
        skip = _json("copy", str(src), str(tmp_path / "dry"), "--dry-run", "--skip-errors",
                     "forbidden", env=local_env, as_owner=True)
        assert (skip["copied"], skip["failed"], skip["skipped_by_reason"]) == (
            2, 0, {"forbidden": 1}), skip
        assert not (tmp_path / "dry").exists()
        # The copy: the same counts, and the same failure.
        copy = _json("copy", str(src), str(tmp_path / "dst"), env=local_env, code=1,
                     as_owner=True)
        assert (copy["copied"], copy["failed_by_kind"]) == (2, {"forbidden": 1}), copy
        assert [f["message"] for f in copy["failures"]] == [why["message"]]
    finally:
        (src / "secret.txt").chmod(0o644)


def test_verify_does_not_call_what_is_below_an_unreadable_source_folder_extra(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """Copied while readable, then locked: the source's walk lists ``locked`` as one
    entry and does not enter it, so ``locked/inner.txt`` at the destination was reported
    ``extra`` ("only at the destination", exit 1) though the source may hold it.  It is
    unverifiable, as the folder is."""
    src = _locked_source(tmp_path)
    (src / "locked").chmod(0o755)
    (src / "dangle").unlink()
    dst = tmp_path / "dst"
    assert lakeshift("copy", str(src), str(dst), env=local_env).returncode == 0
    (tmp_path / "only.txt").write_bytes(b"x")
    os.replace(tmp_path / "only.txt", dst / "only.txt")  # a real extra, for contrast
    (src / "locked").chmod(0)
    try:
        v = _json("verify", str(src), str(dst), "--report", str(tmp_path / "r" / "v"),
                  env=local_env, code=1, as_owner=True)
        assert (v["extra"], v["unverifiable"], v["verified"]) == (1, 2, 2), v
        with open(tmp_path / "r" / "v.csv", newline="") as f:
            rows = {r["name"]: r for r in csv.DictReader(f)}
        assert rows["only.txt"]["kind"] == "extra"
        assert rows["locked/inner.txt"]["kind"] == "unverifiable", rows["locked/inner.txt"]
        assert "below locked, which the source's walk did not enter" in \
            rows["locked/inner.txt"]["detail"]
    finally:
        (src / "locked").chmod(0o755)


def test_files_from_a_link_to_the_destination_and_a_key_below_it_are_both_skipped(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``link`` (-> the destination) and ``link/x.txt`` in one --files-from list: the
    second was refused as a file/folder collision with the first (``invalid-name``, a
    failure) before the source was asked; ``link`` is never written, so it collides with
    nothing and is ``destination-folder`` as ``link`` is.  A key below a file the source
    does not have is ``missing``; a name the destination cannot hold is still
    ``invalid-name``."""
    src, dst = tmp_path / "data", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    for name in ("a.txt", "x.txt", "sub/f.txt"):
        (src / name).write_bytes(name.encode())
        an_hour_ago = time.time() - 3600
        os.utime(src / name, (an_hour_ago, an_hour_ago))
    (src / "link").symlink_to("../out")
    db = f"sqlite:///{tmp_path}/jobs.db"
    first = _json("sync", str(src), str(dst), "--job", "s", "--db", db, "--lag", "0s",
                  env=local_env)
    assert first["copied"] == 3, first
    keys = tmp_path / "keys.txt"
    keys.write_text("link\nlink/x.txt\nlink/sub/f.txt\n")
    s = _json("sync", "--job", "s", "--db", db, "--files-from", str(keys), "--lag", "0s",
              env=local_env)
    assert (s["copied"], s["skipped"], s["failed"]) == (0, 3, 0), s
    assert _failures(local_env, db, "s", "--run", "2") == [
        (k, "destination-folder", "True") for k in ("link", "link/sub/f.txt", "link/x.txt")]
    assert sorted(str(f.relative_to(dst)) for f in dst.rglob("*")) == [
        "a.txt", "sub", "sub/f.txt", "x.txt"]

    (src / "bad.").write_bytes(b"a name a destination cannot hold")
    keys.write_text("a.txt\na.txt/nothing\nbad.\n")
    s = _json("sync", "--job", "s", "--db", db, "--files-from", str(keys), "--lag", "0s",
              env=local_env, code=1)
    assert (s["copied"], s["skipped"], s["failed"]) == (0, 1, 2), s
    assert _failures(local_env, db, "s", "--run", "3") == [
        ("a.txt/nothing", "missing", "False"), ("bad.", "invalid-name", "False")]


def test_check_takes_a_local_destination_the_copy_will_create(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """`check` failed a local destination folder that does not exist yet, which copy
    creates.  It is fine when the nearest existing folder above it takes files (nothing is
    created); a file in the way or an unwritable folder is the one failed line, naming
    the fix."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    new = tmp_path / "new" / "deeper" / "dst"
    p = lakeshift("check", str(src), str(new), env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert all(ln.startswith("ok") for ln in lines), p.stdout
    assert f"{new} does not exist yet; the copy creates it (in {tmp_path})" in p.stdout
    assert [ln.split()[1:3] for ln in lines[-3:]] == [
        ["destination", "reach"], ["destination", "write"], ["destination", "clock"]]
    assert not (tmp_path / "new").exists()
    assert not [n for n in os.listdir(tmp_path) if "lakeshift" in n]  # no probe left

    (tmp_path / "plain.txt").write_bytes(b"in the way")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for dst, needle in ((tmp_path / "plain.txt" / "dst", "plain.txt is a file, not a "
                             "directory: move it away or choose another destination"),
                            (ro / "new" / "dst", f"{ro} is not writable by this user: make "
                             "it writable (chmod/chown)")):
            p = lakeshift("check", str(src), str(dst), env=local_env,
                          prefix=obeying_file_modes())
            assert p.returncode == 2, p.stdout + p.stderr
            fails = [ln for ln in p.stdout.splitlines() if not ln.startswith("ok")]
            assert len(fails) == 1 and fails[0].startswith("FAIL destination reach"), p.stdout
            assert needle in fails[0], fails
            assert "Traceback" not in p.stdout + p.stderr
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_copy_names_what_is_in_the_way_of_its_local_destination_as_check_does(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A destination that is a link to nothing or a looping link: `copy` said only
    "cannot create destination directory …: File exists" (and `check` of a looping one
    was an internal error, exit 4); an existing folder it may not write: "is not
    writable", no fix.  Now each is one line naming what is in the way and the fix, exit
    2, in copy and check alike."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    (tmp_path / "dangle").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for dst, needle in (
                ("dangle", "dangle is a symlink to nothing, in the way: remove it or choose "
                 "another destination"),
                ("loop", "loop is a symlink that loops (too many levels of symbolic links), "
                 "in the way: remove it or choose another destination"),
                ("loop/dst", "loop is a symlink that loops"),
                ("ro", "ro is not writable by this user: make it writable (chmod/chown) or "
                 "choose another destination")):
            for command in ("copy", "check"):
                p = lakeshift(command, str(src), str(tmp_path / dst), env=local_env,
                              prefix=obeying_file_modes())
                assert p.returncode == 2, (command, dst, p.stdout + p.stderr)
                said = p.stderr if command == "copy" else "\n".join(
                    ln for ln in p.stdout.splitlines() if not ln.startswith("ok"))
                assert len(said.strip().splitlines()) == 1 and needle in said, (command, said)
        assert os.listdir(ro) == []
        assert not (tmp_path / "nowhere").exists()
    finally:
        ro.chmod(0o755)


def test_init_with_a_new_local_destination_writes_a_config_that_run_runs(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """init's connection test is check: a new local destination stopped it at "change the
    answers, or write the config anyway?"; now it goes on, and the run creates it."""
    src, dst = tmp_path / "src", tmp_path / "landing" / "dst"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    answers = "\n".join([str(src), str(dst), "y", "none", "loc", f"sqlite:///{tmp_path}/i.db",
                         "1", "4", "once"]) + "\n"
    cfg = tmp_path / "lakeshift.toml"
    p = subprocess.run([str(BIN), "init", "-o", str(cfg)], input=answers, env=local_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "change the answers" not in p.stdout and "written anyway" not in p.stderr, p.stdout
    assert "does not exist yet; the copy creates it" in p.stdout
    assert not dst.exists()
    r = lakeshift("run", "--config", str(cfg), "--json", env=local_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (dst / "a.txt").read_bytes() == b"a"


def test_a_copy_to_local_disk_is_proven_written_md5(local_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    """No service checks a local write, yet such copies were counted `service-md5`: they
    are `written-md5` (lakeshift's MD5 of the bytes it wrote) in the summary, the text's
    `proven` line and the proof log — one file whole, one in blocks; verify then proves
    each by reading the source (`read-md5`)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "small.txt").write_bytes(b"small")
    (src / "big.bin").write_bytes(os.urandom(1024 * 1024 + 3))  # 5 blocks of 256 KiB
    log = tmp_path / "proofs.csv"
    s = _json("copy", str(src), str(dst), "--block-size", "256KiB", "--proof-log", str(log),
              env=local_env)
    assert (s["copied"], s["proofs"]) == (2, {"written-md5": 2}), s
    rows = list(csv.DictReader(log.open()))
    assert sorted((r["source_key"], r["proof"]) for r in rows) == [
        ("big.bin", "written-md5"), ("small.txt", "written-md5")]
    (dst / "small.txt").unlink()
    text = lakeshift("copy", str(src), str(dst), env=local_env)
    assert text.returncode == 0, text.stderr
    assert "proven" in text.stdout and "1 written-md5" in text.stdout, text.stdout
    assert "service" not in text.stdout
    v = _json("verify", str(src), str(dst), "--report", str(tmp_path / "v"), env=local_env)
    assert (v["verified"], v["proofs"]) == (2, {"read-md5": 2}), v
