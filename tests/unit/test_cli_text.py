"""Words in the CLI's text output."""

from __future__ import annotations

import io

from lakeshift.cli.progress import PlainProgress
from lakeshift.cli.text import count, shorten, skip_reasons
from lakeshift.engine.events import BytesMoved, Listed, ListingDone, ObjectDone


def test_count_takes_the_number_of_its_count() -> None:
    assert [count(n, "object") for n in (0, 1, 2)] == ["0 objects", "1 object", "2 objects"]
    assert count(1, "size mismatch") == "1 size mismatch"
    assert count(3, "size mismatch") == "3 size mismatches"


def test_shorten_cuts_at_a_word() -> None:
    text = "the service answered 503 ServerBusy after several attempts"
    assert shorten(text, 100) == text
    assert shorten(text, 30) == "the service answered 503…"
    assert shorten("a\nmultiline   message", 100) == "a multiline message"
    assert shorten("x" * 50, 10) == "x" * 9 + "…"  # one word wider than the room
    assert len(shorten(text, 30)) <= 30


def test_skip_reasons_largest_first_in_the_right_number() -> None:
    assert skip_reasons({"identical": 3, "folder-marker": 1, "invalid-name": 2}) == \
        "3 identical, 2 invalid names, 1 folder marker"
    assert skip_reasons({"exists": 1}) == "1 already at the destination (--overwrite never)"
    assert skip_reasons({"destination-folder": 1, "symlink-loop": 2}) == \
        "2 symlink loops, 1 destination folder"


def test_a_skip_only_skip_errors_makes_says_so_alike() -> None:
    """A dangling link skipped by --skip-errors read "1 dangling-link" beside "2 forbidden
    (--skip-errors)": both are skips the user asked for, and both say it."""
    assert skip_reasons({"identical": 3, "forbidden": 2, "dangling-link": 1}) == \
        "3 identical, 2 forbidden (--skip-errors), 1 dangling link (--skip-errors)"
    assert skip_reasons({"dangling-link": 2}) == "2 dangling links (--skip-errors)"


def test_plain_progress_line_says_1_object() -> None:
    out = io.StringIO()
    progress = PlainProgress(out, interval=0.0)
    for event in (Listed(1, 2048), ListingDone(), BytesMoved(2048),
                  ObjectDone("a", 2048, "copied")):
        progress(event)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("progress: 1/1 object, 2.0 KiB ("), last
    assert "/s), 0 failed" in last


def test_plain_progress_of_a_pass_given_its_keys_has_no_total() -> None:
    # --files-from lists nothing: the line read "progress: 1/0+ objects".
    out = io.StringIO()
    progress = PlainProgress(out, interval=0.0)
    progress(ObjectDone("a", 10, "copied"))
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("progress: 1 object, "), last


def test_the_bar_starts_each_scheduled_pass_from_zero() -> None:
    from lakeshift.cli.progress import RichProgress, new_pass

    bar = RichProgress()
    try:
        for _ in range(2):
            for event in (Listed(3, 30), ListingDone(), BytesMoved(10),
                          ObjectDone("a", 10, "copied"), ObjectDone("b", 10, "skipped")):
                bar(event)
            tasks = {t.description.strip(): t for t in bar.progress.tasks}
            # The second pass's own: 2 of 3 objects, 10 B of 20 B (not 4/6, 20 B of 40 B).
            assert (tasks["objects"].completed, tasks["objects"].total) == (2, 3)
            assert (tasks["bytes"].completed, tasks["bytes"].total) == (10, 20)
            new_pass([bar])
            # Until the next pass's first event the bars stand as the pass left them.
            assert bar.progress.tasks[0].completed == 2
    finally:
        bar.close()


def test_a_batch_of_events_gives_one_line_with_all_of_them() -> None:
    # A Dask run's progress comes from the control DB in bursts: the line printed at the
    # burst's first event read "progress: 0/4+ objects" while its 4 objects were done.
    out = io.StringIO()
    progress = PlainProgress(out, interval=0.0)
    with progress.batch():
        for event in (Listed(4, 0), BytesMoved(400), *(ObjectDone("", 0, "copied")
                                                       for _ in range(4))):
            progress(event)
        assert out.getvalue() == ""
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("progress: 4/4+ objects, 400 B ("), lines


def test_the_bar_total_grows_with_a_listing_after_another_ended() -> None:
    # A run lists its partitions one after another: the first one's end fixed the total,
    # and the bar then read 5/3 objects.
    from lakeshift.cli.progress import RichProgress

    bar = RichProgress()
    try:
        for event in (Listed(3, 30), ListingDone(), Listed(2, 20),
                      *(ObjectDone(k, 10, "copied") for k in "abcde")):
            bar(event)
        files, data = bar.progress.tasks
        assert (files.completed, files.total) == (5, 5)
        assert data.total == 50
    finally:
        bar.close()


def test_scan_findings_take_the_number_of_their_count() -> None:
    """scan said "1 directories the source refused to list": each finding's words now
    follow its count, and what the counts above leave out still says so."""
    from lakeshift.cli.scan_cmd import _FINDING_TEXT, _finding

    assert _finding(1, "forbidden") == ("1 directory the source refused to list, or file it "
                                        "refused to read (403 or permissions; not counted "
                                        "above)")
    assert _finding(2, "forbidden").startswith("2 directories the source refused to list")
    assert _finding(1, "dangling-link") == "1 symbolic link to nothing (not counted above)"
    assert _finding(3, "not-a-file") == ("3 FIFOs, sockets or devices (no content; not "
                                         "counted above)")
    for kind, (one, many) in _FINDING_TEXT.items():
        assert _finding(1, kind) == f"1 {one}" and _finding(2, kind) == f"2 {many}"
    assert _finding(1, "new-kind") == "1 new-kind"
