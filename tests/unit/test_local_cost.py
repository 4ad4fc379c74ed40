"""Local disk's per-file cost: the shortcuts of the read, list and write paths give exactly
what the library calls they replace give (differential), and a read of a small file stays
a few Python calls (counted, not timed)."""

from __future__ import annotations

import mimetypes
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lakeshift.stores.base import StoreConfig
from lakeshift.stores.local import store as local_store
from lakeshift.stores.local import walk as local_walk
from lakeshift.stores.local.store import LocalStore, content_type
from lakeshift.stores.props import format_time, parse_time
from lakeshift.urls import parse_url
from tests.pycalls import python_calls

_ODD_KEYS = [
    "a.txt", "A.TXT", "x.tgz", "x.TGZ", "x.Tgz", "x.tar.gz", "x.tar.bz2", "x.tar.xz",
    "x.tbz", "x.Z", "x.z", "x.gz", "x.br", "x.bz2", "x.txt.gz", "x.csv.Z", "d/x.svgz",
    "..txt", ".txt", "d/.hidden", "d.x/file", "d.x/.y", "a/.b.c", "a/...", "x.", "x..",
    "noext", "dir/", "x.json", "x.parquet", "x.PNG", "f-000001.bin", "é.txt",
    "data:text/plain,hello", "data:image/png;base64,AAAA", "data:nocomma", "a:.txt",
    "a:b.txt", "a/b:c.txt", "s3:x.tgz", ":x.txt",
]


def test_content_type_is_what_mimetypes_guesses_for_every_key() -> None:
    """Differential against ``mimetypes.guess_type(key, strict=False)``: asked twice per
    key (the second answer may come from the per-extension memo)."""
    rng = random.Random(16)
    keys = list(_ODD_KEYS)
    for _ in range(3000):
        keys.append("".join(rng.choice("ab./.:Zz_-TGXtgxé") for _ in range(rng.randint(0, 10))))
    keys += [f"d{i}/f.{ext}" for i, ext in enumerate(
        ["csv", "CSV", "json", "gz", "tgz", "xml", "html", "pdf", "unknownext"])]
    for _ in range(2):
        for key in keys:
            assert content_type(key) == mimetypes.guess_type(key, strict=False)[0], key


def test_mtime_and_its_nanoseconds_are_exact_as_before() -> None:
    """Differential: ``_mtime`` against fromtimestamp + microseconds, ``_ns`` against the
    timedelta's fields, over mtimes before and after 1970."""
    rng = random.Random(7)
    values = [0, 1, 999, 1000, -1, -1000, -1001, 10**9, -(10**9), 1577934245_123456789,
              253402300799_999999999, -62135596800_000000000]
    values += [rng.randint(-(2**62), 2**62) for _ in range(3000)]
    for ns in values:
        seconds, rest = divmod(ns, 10**9)
        try:
            want = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
        except (ValueError, OverflowError):
            continue  # beyond datetime's years
        st = os.stat_result((0,) * 7 + (0, seconds, 0), {"st_mtime_ns": ns})
        assert local_walk._mtime(st) == want, ns
        delta = want - datetime(1970, 1, 1, tzinfo=UTC)
        assert local_store._ns(want) == \
            (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _old_parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def test_parse_time_reads_what_it_always_read() -> None:
    """Differential against the parse it replaced (every "Z" made "+00:00" first)."""
    rng = random.Random(3)
    texts: list[str | None] = [
        None, "", "yesterday", "2024-05-01T12:34:56.123456Z", "2024-05-01T12:34:56Z",
        "2024-05-01T12:34:56.123456+00:00", "2024-05-01T12:34:56.123456+05:30",
        "2024-05-01T12:34:56", "2024-05-01", "2024-05-01Z", "20240501T123456Z",
        "2024-05-01T12:34:56.123456z", "2024-05-01TZ12:00", "Z", "2024-05-01T12:34:56ZZ",
        "0999-12-31T23:59:59.999999Z", "999-12-31T23:59:59.999999Z",
    ]
    for _ in range(2000):
        when = datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28),
                        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                        rng.randint(0, 999_999), tzinfo=UTC)
        texts.append(format_time(when))
        texts.append(format_time(when).replace("Z", rng.choice(["", "+01:00", "z", "ZZ"])))
    for text in texts:
        assert parse_time(text) == _old_parse(text), text
        got = parse_time(text)
        assert got is None or got.utcoffset() == _old_parse(text).utcoffset()  # type: ignore[union-attr]


def test_format_time_of_any_zone_is_the_utc_text() -> None:
    from datetime import timezone

    when = datetime(2024, 5, 1, 14, 4, 56, 120000, tzinfo=timezone(timedelta(hours=1, minutes=30)))
    assert format_time(when) == "2024-05-01T12:34:56.120000Z"
    assert format_time(datetime(2024, 5, 1)) == "2024-05-01T00:00:00.000000Z"
    named_utc = timezone(timedelta(0), "Z0")
    assert format_time(datetime(2024, 5, 1, tzinfo=named_utc)) == "2024-05-01T00:00:00.000000Z"


def test_a_small_read_is_a_few_python_calls(tmp_path: Path) -> None:
    """The read of one small file in its worker (open, fstat, pread, content type, result)
    makes a handful of Python calls: the content type comes from the per-extension memo,
    not from mimetypes' parse of the key (five calls more, ~6 µs, per file)."""
    (tmp_path / "d").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "d" / name).write_bytes(b"x,y\n")
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    store._read("d/a.csv", None, None, None)  # the first of its extension asks mimetypes
    read: list[Any] = []
    calls = python_calls(lambda: read.append(store._read("d/b.csv", None, None, None)))
    r = read[0]
    assert r.data == b"x,y\n" and r.props.content_type == "text/csv"
    # The lambda, _read, _path, _read_file, local_etag, _read_span, content_type,
    # ObjectProps, ReadResult.
    assert calls <= 9, calls


def test_paths_are_what_os_path_join_makes(tmp_path: Path) -> None:
    """Differential: ``_path`` against ``os.path.join(root, *key.split("/"))``, the join it
    skips for plain keys, for roots with and without a final slash."""
    keys = ["", "a", "a/b", "a/b/", "a//b", "/a", "//a", "a/", "a/./b", "a/../b", ".", "é/ü",
            "a b/c", "a\\b", "x" * 300]
    for root in (str(tmp_path), str(tmp_path) + "/", "/", "rel", "rel/"):
        store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
        store.root = root
        store._prefix = root + "/" if root and not root.endswith("/") else root
        for key in keys:
            assert store._path(key) == os.path.join(root, *key.split("/")), (root, key)
    assert LocalStore(StoreConfig(parse_url(str(tmp_path))))._path("a/b") == \
        os.path.join(str(tmp_path), "a", "b")


def test_a_head_of_a_source_told_its_destination_stays_a_few_calls(tmp_path: Path) -> None:
    """A local source told its destination checks each name of a key on its way down
    (``_named_into_destination``: a link into the destination is not followed), a HEAD per
    key of a --files-from list, a move's check, a deletion's look-up.  It costs a few
    Python calls more than a plain HEAD, whatever the key's depth and the destination's:
    it was 32 more for a key 4 deep (the destination's realpath, asked and unused, and
    os.path.join per name), about twice the CPU of the HEAD itself."""
    src = tmp_path / "src"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "a" / "b" / "c" / "f.txt").write_bytes(b"x")
    dst = tmp_path / "d1" / "d2" / "d3" / "dst"
    dst.mkdir(parents=True)
    plain = LocalStore(StoreConfig(parse_url(str(src))))
    avoiding = LocalStore(StoreConfig(parse_url(str(src)), destination_folder=str(dst)))
    key = "a/b/c/f.txt"
    assert avoiding._exists_avoiding(key) == local_store._exists(key, plain._path(key))
    base = python_calls(lambda: local_store._exists(key, plain._path(key)))
    told = python_calls(lambda: avoiding._exists_avoiding(key))
    assert told - base <= 4, (told, base)
