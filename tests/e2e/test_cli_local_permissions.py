"""Local-disk messages that say what is true, from the CLI as a user who may not read
everything runs it (mode bits bind: ``obeying_file_modes``): a source out of sight is
unreadable, not missing; scan reports a folder it may not list as the copy records it
(`forbidden`); a destination that cannot be made or written names the fix, as `check`
does; one file copied is named in the header; a folder that can be listed but not entered
says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import lakeshift, obeying_file_modes, one_clear_line


@pytest.fixture
def modes(tmp_path: Path) -> Iterator[list[Path]]:
    """Folders a test chmods: given back their owner's permissions afterwards (so pytest
    can remove them)."""
    changed: list[Path] = []
    yield changed
    for p in changed:
        p.chmod(0o755)


def _as_user(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    p = lakeshift(*args, env=env, prefix=obeying_file_modes())
    return p.returncode, p.stdout, p.stderr


def test_a_source_below_a_folder_the_user_cannot_enter_is_unreadable_not_missing(
        local_env: dict[str, str], tmp_path: Path, modes: list[Path]) -> None:
    """It said `local source … does not exist (and no name in …/locked starts with
    'inner')`: the name is there, out of sight."""
    locked = tmp_path / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "x.txt").write_bytes(b"x")
    locked.chmod(0)
    modes.append(locked)
    src = str(locked / "inner")
    for args in (("copy", src, str(tmp_path / "out")),
                 ("check", src, str(tmp_path / "out")),
                 ("plan", src, str(tmp_path / "out"), "--job", "j", "--db",
                  f"sqlite:///{tmp_path}/j.db")):
        p = lakeshift(*args, env=local_env, prefix=obeying_file_modes())
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        line = one_clear_line(p)
        assert line == (f"lakeshift: local source {src} cannot be read (permission denied "
                        f"on {locked}): fix the permissions or run as a user who may read "
                        "it"), line
    # A name that is truly missing still says so.
    code, _, err = _as_user("copy", str(tmp_path / "nothere"), str(tmp_path / "out"),
                            env=local_env)
    assert code == 2 and "nothere does not exist" in err, err


def test_scan_reports_a_folder_it_may_not_list_as_forbidden(
        local_env: dict[str, str], tmp_path: Path, modes: list[Path]) -> None:
    """It said "nothing found that cannot be copied as it is" and counted the folder as a
    0-byte object, which the copy then failed `forbidden`."""
    src = tmp_path / "src"
    (src / "secret").mkdir(parents=True)
    (src / "secret" / "s.txt").write_bytes(b"s")
    (src / "a.txt").write_bytes(b"aa")
    (src / "secret").chmod(0)
    modes.append(src / "secret")
    code, out, err = _as_user("scan", str(src), "--json", env=local_env)
    assert code == 0, err
    r = json.loads(out)
    assert (r["objects"], r["bytes"]) == (1, 2), r
    found = {f["kind"]: f for f in r["findings"]}
    assert found["forbidden"]["examples"] == [
        "secret/ (permission denied (cannot list the folder))"], found
    assert "--skip-errors forbidden" in found["forbidden"]["advice"]
    code, out, err = _as_user("scan", str(src), env=local_env)
    assert code == 0 and "nothing found that cannot be copied" not in out, out
    assert "1 directory the source refused to list, or file it refused to read (403" in out, out
    assert "secret/" in out, out
    # The copy records that same kind.
    code, out, err = _as_user("copy", str(src), str(tmp_path / "dst"), "--json",
                              env=local_env)
    assert code == 1 and json.loads(out)["failed_by_kind"] == {"forbidden": 1}, out


@pytest.mark.parametrize("case", ["folder above not writable", "file in the way",
                                  "destination not writable"])
def test_copy_names_the_fix_for_a_local_destination_as_check_does(
        local_env: dict[str, str], tmp_path: Path, modes: list[Path], case: str) -> None:
    """It said `cannot create destination directory …: Permission denied` (or `Not a
    directory`, or `destination directory … is not writable`) with no fix."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    modes.append(ro)
    (tmp_path / "afile").write_bytes(b"f")
    dst, want = {
        "folder above not writable": (
            ro / "out", f"cannot create destination directory {ro / 'out'}: {ro} is not "
            f"writable by this user: make it writable (chmod/chown), create {ro / 'out'} "
            "yourself, or choose another destination"),
        "file in the way": (
            tmp_path / "afile" / "x", f"cannot create destination directory "
            f"{tmp_path / 'afile' / 'x'}: {tmp_path / 'afile'} is a file, not a directory: "
            "move it away or choose another destination"),
        "destination not writable": (
            ro, f"destination directory {ro} is not writable by this user: make it "
            "writable (chmod/chown) or choose another destination"),
    }[case]
    p = lakeshift("copy", str(src), str(dst), env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 2, p.stdout + p.stderr
    line = one_clear_line(p)
    assert line.startswith(f"lakeshift: {want}"), line
    # `check` words it the same (one place).
    c = lakeshift("check", str(src), str(dst), env=local_env, prefix=obeying_file_modes())
    assert c.returncode == 2 and want in c.stdout, c.stdout + c.stderr


def test_copying_one_local_file_names_that_file_as_the_source(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """The header said `Copy: <its folder> → …`."""
    one = tmp_path / "data" / "one.csv"
    one.parent.mkdir()
    one.write_bytes(b"1,2\n")
    (one.parent / "other.csv").write_bytes(b"not copied")
    p = lakeshift("copy", str(one), str(tmp_path / "dst"), env=local_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == f"Copy: {one} → {tmp_path / 'dst'}", p.stdout
    j = lakeshift("copy", str(one), str(tmp_path / "dst"), "--json", env=local_env)
    assert json.loads(j.stdout)["source"] == str(one), j.stdout
    assert sorted(x.name for x in (tmp_path / "dst").iterdir()) == ["one.csv"]


def test_a_folder_that_can_be_listed_but_not_entered_says_so(
        local_env: dict[str, str], tmp_path: Path, modes: list[Path]) -> None:
    """A folder of mode 444 said "cannot list the folder": its names can be listed; it is
    entering it to read its entries that is refused."""
    src = tmp_path / "src"
    (src / "l").mkdir(parents=True)
    (src / "l" / "x.txt").write_bytes(b"x")
    (src / "y.txt").write_bytes(b"y")
    (src / "l").chmod(0o444)
    modes.append(src / "l")
    code, out, err = _as_user("copy", str(src), str(tmp_path / "dst"), env=local_env)
    assert code == 1, out + err
    assert (f"FAILED l: [forbidden] {src / 'l'}: permission denied (the folder's names can "
            "be listed, but it cannot be entered: none of its entries can be read)") in out, out
    assert "cannot list the folder" not in out


def test_verify_calls_a_source_file_it_may_not_read_unverifiable_not_missing(
        local_env: dict[str, str], tmp_path: Path, modes: list[Path]) -> None:
    """After `copy --skip-errors forbidden`, verify said `MISSING locked.txt` (rc 1) for the
    file it could not read, while the folder it could not list beside it was
    `unverifiable: forbidden`: both are unverifiable now, as nothing can be compared."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "lockdir").mkdir(parents=True)
    (src / "lockdir" / "in.txt").write_bytes(b"z")
    (src / "ok.txt").write_bytes(b"a")
    (src / "locked.txt").write_bytes(b"secret")
    for p in (src / "locked.txt", src / "lockdir"):
        p.chmod(0)
        modes.append(p)
    code, out, err = _as_user("copy", str(src), str(dst), "--skip-errors", "forbidden",
                              env=local_env)
    assert code == 0, out + err
    code, out, err = _as_user("verify", str(src), str(dst), "--report",
                              str(tmp_path / "v"), "--json", env=local_env)
    assert code == 0, out + err
    r = json.loads(out)
    assert (r["verified"], r["missing"], r["unverifiable"]) == (1, 0, 2), r
    assert r["unverifiable_reasons"] == {
        "forbidden at the source: permission denied, so not copied": 2}, r
    rows = (tmp_path / "v.csv").read_text()
    assert "locked.txt" in rows and "permission denied (cannot read)" in rows, rows
