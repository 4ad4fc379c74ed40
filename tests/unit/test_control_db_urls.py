"""Which SQLite control DB URLs open: every form ``lakeshift init`` writes or accepts, the URI
filename (``sqlite:///file:/abs/path.db?mode=rwc&uri=true``) included, for writing and for
reading only; refused, in one line naming the forms that work, only what cannot work."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lakeshift.control.db import SQLITE_FORMS, sqlite_file
from lakeshift.control.repository import ControlDB
from lakeshift.errors import UsageError


def _jobs(url: str, read_only: bool = False) -> list[str]:
    db = ControlDB(url, read_only=read_only)
    try:
        return [j.name for j in db.jobs()]
    finally:
        db.close()


def _made(url: str) -> None:
    """A control DB made at ``url`` (as plan makes one), holding no job."""
    ControlDB(url, create=True).close()


@pytest.mark.parametrize("form", [
    "sqlite:///file:{path}?mode=rwc&uri=true",
    "sqlite:///file:{path}?uri=true&cache=shared",
    "sqlite:///file://localhost{path}?uri=true&mode=rwc&timeout=5",
    "sqlite:///file:{quoted}?uri=true",
    "sqlite:///{path}?uri=true",
    "sqlite:///{path}?timeout=5",
])
def test_a_uri_filename_opens_the_file_it_names_to_write_and_to_read(
        tmp_path: Path, form: str) -> None:
    path = tmp_path / "state dir" / "c.db"
    path.parent.mkdir()
    url = form.format(path=path, quoted=str(path).replace(" ", "%20"))
    _made(url)  # plan creates it
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["state dir"]
    assert _jobs(url) == []  # every command that opens an existing DB
    assert _jobs(url, read_only=True) == []  # the monitor, status inside reading_only()
    assert _jobs(f"sqlite:///{path}") == []  # the same file


def test_a_relative_uri_filename_is_from_the_folder_the_command_runs_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    url = "sqlite:///file:state/k.db?mode=rwc&uri=true"  # a relative URI filename
    _made(url)
    assert (tmp_path / "state" / "k.db").is_file()
    assert _jobs(url) == [] and _jobs(url, read_only=True) == []
    assert sqlite_file(url) is not None and sqlite_file(url).path == "state/k.db"  # type: ignore[union-attr]
    with pytest.raises(UsageError, match=r"^no control DB at state/none.db: run `lakeshift plan"):
        _jobs("sqlite:///file:state/none.db?mode=rw&uri=true")


def test_read_only_parameters_read_but_do_not_write(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _made(f"sqlite:///{path}")
    for params in ("mode=ro", "immutable=1"):
        url = f"sqlite:///file:{path}?{params}&uri=true"
        assert _jobs(url, read_only=True) == []
        with pytest.raises(UsageError) as e:
            _jobs(url)
        assert str(e.value) == (f"control DB {url} opens its file read-only ({params}), and "
                                f"this command writes to it: leave {params} out (the monitor "
                                "reads read-only by itself)")


def test_mode_rw_does_not_create_a_db(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(UsageError, match="mode=rw opens only an existing file: use mode=rwc"):
        _made(f"sqlite:///file:{path}?mode=rw&uri=true")
    assert not path.exists()
    _made(f"sqlite:///file:{path}?mode=rwc&uri=true")
    assert _jobs(f"sqlite:///file:{path}?mode=rw&uri=true") == []


@pytest.mark.parametrize("url,what", [
    ("sqlite://", "must be a file, not memory"),
    ("sqlite:///:memory:", "must be a file, not memory"),
    ("sqlite:///file::memory:?uri=true", "must be a file, not memory"),
    ("sqlite:///file:x.db?mode=memory&uri=true", "must be a file, not memory"),
    ("sqlite:///file://otherhost/x.db?uri=true", "names a file on host 'otherhost'"),
    ("sqlite:///x.db?mode=rwc", "mode is SQLite URI parameters"),
    ("sqlite:///file:x.db?mode=ro&cache=shared", "cache, mode are SQLite URI parameters"),
    ("sqlite:///file:x.db?uri=maybe", "uri='maybe' is neither true nor false"),
    ("sqlite://somehost/x.db", "a SQLite URL names a file, with no host"),
    # without uri=true the driver would open a file named "file:x.db" here
    ("sqlite:///file:x.db", "a SQLite URI filename (file:PATH) needs uri=true beside it"),
])
def test_what_cannot_work_is_refused_naming_the_forms_that_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, what: str) -> None:
    monkeypatch.chdir(tmp_path)
    for create in (True, False):
        with pytest.raises(UsageError) as e:
            ControlDB(url, create=create)
        line = str(e.value)
        assert what in line and line.endswith(SQLITE_FORMS) and "\n" not in line, line
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_a_path_and_its_uri_filename_are_one_db(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "path" / "to").mkdir(parents=True)
    _made("sqlite:///path/to/file.db")
    con = sqlite3.connect(tmp_path / "path" / "to" / "file.db")
    con.execute("insert into lakeshift_jobs (name, destination, options, created_at) "
                "values ('j', 'd', '{}', '2026-12-01 00:00:00.000000')")
    con.commit()
    con.close()
    for url in (f"sqlite:///file:{tmp_path}/path/to/file.db?uri=true&mode=rwc",
                "sqlite:///file:path/to/file.db?uri=true", "sqlite:///path/to/file.db"):
        assert _jobs(url) == ["j"] and _jobs(url, read_only=True) == ["j"], url


@pytest.mark.parametrize("query,what", [
    ("timeout=abc", "timeout='abc' is not a number"),
    ("check_same_thread=abc", "check_same_thread='abc' is not true or false"),
    ("detect_types=abc", "detect_types='abc' is not an integer"),
    ("cached_statements=1.5", "cached_statements='1.5' is not an integer"),
])
def test_a_driver_option_the_driver_cannot_read_is_one_line(
        tmp_path: Path, query: str, what: str) -> None:
    """The driver converts these itself; a value it cannot convert was an internal error
    (a ValueError from SQLAlchemy), in either form of the URL."""
    for url in (f"sqlite:///{tmp_path}/c.db?{query}",
                f"sqlite:///file:{tmp_path}/c.db?uri=true&{query}"):
        for create, read_only in ((True, False), (False, True)):
            with pytest.raises(UsageError) as e:
                ControlDB(url, create=create, read_only=read_only)
            line = str(e.value)
            assert what in line and "leave it out" in line and "\n" not in line, line
    assert list(tmp_path.iterdir()) == []  # nothing made
    _made(f"sqlite:///{tmp_path}/c.db?timeout=2.5&check_same_thread=no&cached_statements=9")


@pytest.mark.parametrize(("query", "key"), [("uri=true&uri=false&mode=rwc", "uri"),
                                            ("uri=true&timeout=5&timeout=6", "timeout"),
                                            ("uri=true&mode=ro&mode=rwc", "mode")])
def test_a_parameter_given_twice_is_one_line(tmp_path: Path, query: str, key: str) -> None:
    """The driver reads a repeated key its own way (uri=true&uri=false: true, a tuple), and
    lakeshift took the last value: the file checked was not the file opened (``uri=false``:
    "directory …/file:… does not exist"), or the driver failed (``timeout``: a TypeError,
    an internal error)."""
    with pytest.raises(UsageError) as e:
        ControlDB(f"sqlite:///file:{tmp_path}/c.db?{query}", create=True)
    assert str(e.value).endswith(f"{key} given more than once: give each parameter once"), \
        str(e.value)
    assert list(tmp_path.iterdir()) == []
