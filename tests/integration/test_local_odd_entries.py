"""Local sources with entries that are not plain files or folders (found by a new user's
tryout): a FIFO is skipped, not waited on; a symlink loop does not break automatic
partitioning; a mistyped source path is refused instead of copying nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lakeshift


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.timeout(60)
def test_a_fifo_is_skipped_not_waited_on(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.mkfifo(src / "pipe")
    (src / "z.txt").write_bytes(b"z")
    res = lakeshift.copy(str(src), str(dst))
    assert res.exit_code == 0
    assert _tree(dst) == {"a.txt": b"a", "z.txt": b"z"}
    assert res.stats.skipped_by_reason == {"not-a-file": 1}
    assert [(f.object_key, f.error_kind, f.skipped) for f in res.failures] == [
        ("pipe", "not-a-file", True)]


def test_automatic_partitions_of_a_tree_with_symlink_loops(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for d in ("a", "b", "c"):
        (src / d).mkdir(parents=True)
        for i in range(3):
            (src / d / f"f{i}").write_bytes(f"{d}{i}".encode())
    (src / "a" / "up").symlink_to(src)            # to a folder above it
    (src / "self").symlink_to(src / "self")       # to itself
    (src / "root.txt").write_bytes(b"r")
    db = f"sqlite:///{tmp_path}/c.db"
    plan = lakeshift.plan(str(src), str(dst), job="j", db=db, partition_by="auto",
                          target_objects=2)
    assert plan.job.partitions >= 2
    run = lakeshift.run(job="j", db=db)
    assert run.exit_code == 0
    want = {str(p.relative_to(src)): p.read_bytes() for p in src.rglob("*")
            if p.is_file() and not p.is_symlink()}
    assert _tree(dst) == want


def test_a_mistyped_local_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(lakeshift.UsageError, match="does not exist"):
        lakeshift.copy(str(tmp_path / "dtaa"), str(tmp_path / "out"))
    # A name prefix that matches is still a source (the names starting with it).
    (tmp_path / "data-2024.csv").write_bytes(b"x")
    res = lakeshift.copy(str(tmp_path / "data-20"), str(tmp_path / "out"))
    assert res.stats.copied == 1


def test_verify_reports_a_stray_percent_name_beside_its_decoded_source(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a b").write_bytes(b"x")
    assert lakeshift.copy(str(src), str(dst), invalid_names="encode").exit_code == 0
    (dst / "a%20b").write_bytes(b"stray")  # not a name the copy writes for "a b"
    r = lakeshift.verify(str(src), str(dst), invalid_names="encode",
                         report=str(tmp_path / "rep" / "v"))
    assert (r.extra, r.exit_code) == (1, 1)


def test_scan_counts_links_it_does_not_follow_as_the_copy_records_them(tmp_path: Path
                                                                         ) -> None:
    """Looping and dangling symlinks were counted as 0-byte objects (3 objects where the
    copy copies 2): each is now a finding of the kind the copy records it as, with its own
    count, and the objects are the files the copy copies."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"aa")
    (src / "d" / "f.txt").write_bytes(b"f")
    (src / "dangle").symlink_to("nowhere")
    (src / "self").symlink_to(src / "self")  # loops to itself
    (src / "d" / "up").symlink_to(src)  # to a folder above it
    r = lakeshift.scan(str(src))
    assert (r.objects, r.bytes) == (2, 3), r
    assert sorted(g.name for g in r.by_prefix) == ["(root)", "d/"]
    dangling, loops = r.finding("dangling-link"), r.finding("symlink-loop")
    assert dangling is not None and loops is not None, r.findings
    assert (dangling.objects, dangling.bytes) == (1, 0)
    assert dangling.examples == (
        "dangle (a symlink to nowhere, which does not exist: nothing to copy)",)
    assert "--skip-errors dangling-link" in dangling.advice
    assert (loops.objects, loops.bytes) == (2, 0)
    assert [e.split(" ", 1)[0] for e in loops.examples] == ["d/up", "self"], loops.examples
    # The copy: those two files, the dangling link failed, the loops skipped.
    res = lakeshift.copy(str(src), str(tmp_path / "dst"))
    assert res.stats.copied == r.objects
    assert res.stats.failed_by_kind == {"dangling-link": dangling.objects}
    assert res.stats.skipped_by_reason == {"symlink-loop": loops.objects}
    # A folder that holds only such a link is not "nothing to scan": it says what is there.
    only = tmp_path / "only"
    only.mkdir()
    (only / "gone").symlink_to("nowhere")
    r = lakeshift.scan(str(only))
    assert r.objects == 0 and [f.kind for f in r.findings] == ["dangling-link"], r


@pytest.mark.timeout(60)
def test_a_dry_run_skips_a_fifo_as_the_copy_does(tmp_path: Path) -> None:
    """A dry run counted a FIFO as would-copy (listed with a time and an ETag) while the
    copy skips it `not-a-file`: the dry run opens each local file (reading nothing) and
    says the same, without waiting on the FIFO."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.mkfifo(src / "pipe")
    (src / "z.txt").write_bytes(b"z")
    dry = lakeshift.copy(str(src), str(tmp_path / "dst"), dry_run=True)
    assert (dry.exit_code, dry.stats.copied) == (0, 2)
    assert dry.stats.skipped_by_reason == {"not-a-file": 1}
    assert not (tmp_path / "dst").exists()


@pytest.mark.timeout(60)
def test_scan_reports_a_fifo_and_a_socket_as_the_copy_records_them(tmp_path: Path) -> None:
    """A FIFO and a socket were counted as 0-byte objects (the walk lists them by their
    stat) while the copy skips each ``not-a-file``: each is now a ``not-a-file`` finding,
    not an object, found without waiting on the FIFO; an empty file is still an object.
    The text output says what the findings are, not their bare kind."""
    import socket

    from lakeshift.cli.scan_cmd import scan_lines

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"aa")
    (src / "empty.txt").write_bytes(b"")
    os.mkfifo(src / "pipe")
    (src / "gone").symlink_to("nowhere")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(src / "sock"))
        r = lakeshift.scan(str(src))
    finally:
        sock.close()
    assert (r.objects, r.bytes) == (2, 2), r
    odd = r.finding("not-a-file")
    assert odd is not None, r.findings
    assert (odd.objects, odd.bytes) == (2, 0)
    assert [e.split(" ", 1)[0] for e in odd.examples] == ["pipe", "sock"], odd.examples
    assert "skipped (not-a-file)" in odd.advice
    text = "\n".join(scan_lines(r))
    assert "2 FIFOs, sockets or devices (no content; not counted above) (0 B;" in text, text
    assert "1 symbolic link to nothing (not counted above) (0 B;" in text, text
    for kind in ("dangling-link", "not-a-file"):
        assert f" {kind} (" not in text, text


def test_scan_reports_files_it_may_not_read_as_the_copy_records_them(tmp_path: Path
                                                                     ) -> None:
    """A file this user may not read was counted as an object (an empty one too, though
    scan opens each empty file) while the dry run and the copy record it `forbidden`: each
    is now a `forbidden` finding, with the unreadable folders' advice, not an object.  Run
    as a user whom mode bits bind (root reads any file: its override is dropped)."""
    import json

    from tests import servers
    from tests.e2e.cli import lakeshift as cli
    from tests.e2e.cli import obeying_file_modes

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"aa")
    (src / "empty.secret").write_bytes(b"")
    (src / "z.secret").write_bytes(b"zzz")
    for name in ("empty.secret", "z.secret"):
        (src / name).chmod(0)
    env = servers.clean_env() | {"HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}

    def as_user(*args: str) -> tuple[int, dict[str, object]]:
        p = cli(*args, "--json", env=env, prefix=obeying_file_modes())
        assert "Traceback" not in p.stderr, p.stderr
        return p.returncode, json.loads(p.stdout)

    code, r = as_user("scan", str(src))
    assert code == 0 and (r["objects"], r["bytes"]) == (1, 2), r
    found = {f["kind"]: f for f in r["findings"]}  # type: ignore[attr-defined]
    assert set(found) == {"forbidden"}, found
    assert found["forbidden"]["objects"] == 2
    assert found["forbidden"]["examples"] == [
        "empty.secret (permission denied (cannot read))",
        "z.secret (permission denied (cannot read))"], found
    assert "--skip-errors forbidden" in found["forbidden"]["advice"]
    # The dry run and the copy: the one readable file, the two failed `forbidden`.
    for dry in (("--dry-run",), ()):
        code, c = as_user("copy", str(src), str(tmp_path / "dst"), *dry)
        assert code == 1 and c["failed_by_kind"] == {"forbidden": 2}, (dry, c)
        assert c["copied"] == r["objects"], (dry, c)
