"""The text summary of `copy`: how objects were proven, a run where everything failed, a dry
run's rows in line (found by a new user trying the README, session 13)."""

from __future__ import annotations

from collections import Counter

import pytest

from lakeshift.cli.summary import print_summary
from lakeshift.model import CopyResult, Failure, TransferStats


def _text(result: CopyResult, capsys: pytest.CaptureFixture[str]) -> list[str]:
    print_summary(result, "s3://lake/raw/", "az://lake/raw/", as_json=False)
    return capsys.readouterr().out.splitlines()


def test_the_text_summary_says_how_the_copied_objects_were_proven(
        capsys: pytest.CaptureFixture[str]) -> None:
    stats = TransferStats(listed=325, listed_bytes=10, copied=325, copied_bytes=10,
                          bytes_transferred=10, started=1.0, finished=2.0)
    lines = _text(CopyResult(stats, proofs=Counter({"source-md5": 322, "source-crc32": 3})),
                  capsys)
    assert "  proven   3 source-crc32, 322 source-md5" in lines


def test_the_text_summary_says_what_a_folders_proof_is(
        capsys: pytest.CaptureFixture[str]) -> None:
    stats = TransferStats(listed=7, listed_bytes=10, copied=7, copied_bytes=10,
                          bytes_transferred=10, started=1.0, finished=2.0)
    lines = _text(CopyResult(stats, proofs=Counter({"read-md5": 5, "folder": 2})), capsys)
    assert ("  proven   2 folder (made at the destination; no bytes to prove), 5 read-md5"
            in lines), lines


@pytest.mark.parametrize(("deleted", "kept", "folders", "line"), [
    (3, 0, 2, "  moved             3 source objects deleted after verification, 0 kept (not "
              "provably copied); removed 2 empty folders"),
    (1, 1, 0, "  moved             1 source object deleted after verification, 1 kept (not "
              "provably copied)"),
    (0, 0, 1, "  moved             0 source objects deleted after verification, 0 kept (not "
              "provably copied); removed 1 empty folder"),
])
def test_a_moves_line_counts_the_folders_it_removed_apart(
        deleted: int, kept: int, folders: int, line: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    stats = TransferStats(listed=3, listed_bytes=10, copied=3, copied_bytes=10,
                          bytes_transferred=10, started=1.0, finished=2.0,
                          sources_deleted=deleted, sources_kept=kept, folders_removed=folders)
    assert line in _text(CopyResult(stats), capsys)


def test_a_copy_where_every_object_failed_does_not_say_there_was_nothing_to_copy(
        capsys: pytest.CaptureFixture[str]) -> None:
    stats = TransferStats(listed=100, listed_bytes=100, failed=100, failed_bytes=100,
                          failed_by_kind={"server-copy": 100}, started=1.0, finished=2.0)
    fails = [Failure(f"k{i}", "server-copy", "cannot", 1) for i in range(100)]
    lines = _text(CopyResult(stats, failures=fails), capsys)
    duration = next(line for line in lines if line.lstrip().startswith("duration"))
    assert "nothing copied; 100 objects failed" in duration
    assert "nothing to copy" not in "\n".join(lines)


def test_a_dry_run_summary_keeps_its_rows_in_line_and_shows_no_rate(
        capsys: pytest.CaptureFixture[str]) -> None:
    stats = TransferStats(listed=7, listed_bytes=700, copied=5, copied_bytes=500,
                          skipped=2, skipped_bytes=200, skipped_by_reason={"identical": 2},
                          started=1.0, finished=1.5)
    lines = _text(CopyResult(stats, dry_run=True), capsys)
    rows = [line for line in lines[1:5]]
    # The counts end in the same column on every row, "would copy" included.
    ends = {line.index(" object") for line in rows if " object" in line}
    assert len(ends) == 1, rows
    duration = next(line for line in lines if line.lstrip().startswith("duration"))
    assert "dry run: nothing written" in duration and "/s" not in duration


def test_many_failures_of_one_cause_are_said_once_with_their_count(
        capsys: pytest.CaptureFixture[str]) -> None:
    """An endpoint that stopped answering mid-copy failed every object left the same way:
    one line with the count and what to do, not twenty identical lines (a new user's
    tryout); the other failures and the skips are still listed one by one."""
    fails = [Failure(f"k{i:03d}", "transient", "cannot connect to 127.0.0.1:15501", 6)
             for i in range(91)]
    fails += [Failure("odd", "forbidden", "odd: permission denied", 1),
              Failure("loop", "symlink-loop", "loop: symlink loop", 1, skipped=True)]
    stats = TransferStats(listed=200, listed_bytes=200, copied=107, copied_bytes=107,
                          failed=92, failed_bytes=92, skipped=1,
                          skipped_by_reason={"symlink-loop": 1},
                          failed_by_kind={"transient": 91, "forbidden": 1},
                          started=1.0, finished=2.0)
    lines = _text(CopyResult(stats, failures=fails), capsys)
    same = [line for line in lines if "FAILED 91 objects the same way" in line]
    assert same == ["  FAILED 91 objects the same way: [transient] cannot connect to "
                    "127.0.0.1:15501 — an endpoint that stopped answering? Once it answers, "
                    "run the same command again: what was copied is skipped as identical"]
    assert not any(line.startswith("  FAILED k0") for line in lines), lines
    assert "  FAILED odd: [forbidden] odd: permission denied" in lines
    assert "  SKIPPED loop: [symlink-loop] loop: symlink loop" in lines
    # What to do, once a kind: the transient cause's was said on its line already.
    assert lines[-2:] == ["  each object's key and error: --json",
                          "  forbidden: to skip these and go on: --skip-errors forbidden (or "
                          "grant read access and run again)"]


def test_a_few_failures_alike_are_still_listed_one_by_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    fails = [Failure(f"d/k{i}", "not-found", f"d/k{i}: gone", 1) for i in range(5)]
    stats = TransferStats(listed=5, failed=5, failed_by_kind={"not-found": 5},
                          started=1.0, finished=2.0)
    lines = _text(CopyResult(stats, failures=fails), capsys)
    assert [line for line in lines if line.startswith("  FAILED")] == [
        f"  FAILED d/k{i}: [not-found] d/k{i}: gone" for i in range(5)]
    assert not any("the same way" in line or "--json" in line for line in lines)


def test_the_hints_name_every_kind_skip_errors_takes_and_no_other() -> None:
    """The combined ``--skip-errors a,b`` line names only kinds the flag accepts (the
    engine refuses any other): the summary's list and the engine's agree."""
    from lakeshift.cli.summary import _SKIPPABLE
    from lakeshift.engine.pipeline import SKIPPABLE

    assert _SKIPPABLE == SKIPPABLE


def test_a_runs_hints_name_the_flags_where_a_job_takes_them(
        capsys: pytest.CaptureFixture[str]) -> None:
    """run takes no --skip-errors or --invalid-names (they are the job's, planned with it)
    but takes --copy-mode for one run; the combined line keeps the kinds the job skips
    already (this run skipped some archived objects)."""
    from lakeshift.cli.job_cmds import _print_run
    from lakeshift.model import RunResult

    stats = TransferStats(listed=9, copied=3, failed=4, skipped=2,
                          failed_by_kind={"invalid-name": 1, "forbidden": 2, "server-copy": 1},
                          skipped_by_reason={"identical": 1, "archived": 1},
                          started=1.0, finished=2.0)
    _print_run(RunResult(7, failed=1, stats=stats, job="j", number=3), False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-6:] == [
        "  invalid-name: to skip these and go on: plan the job again with --skip-errors "
        "invalid-name; to rename instead a name the destination's rules reject: plan the job "
        "again with --invalid-names encode",
        "  forbidden: to skip these and go on: plan the job again with --skip-errors forbidden "
        "(or grant read access and run again)",
        "  server-copy: to stream what the service cannot copy itself: --copy-mode auto",
        "  to skip them all and go on: plan the job again with --skip-errors "
        "archived,invalid-name,forbidden (one flag, comma-separated)",
        "  to plan the job again: `lakeshift plan --job j --replan` with the flag above (its "
        "other options and its partitions stay; its next run compares everything again, "
        "skipping what is identical)",
        "  this run's failed objects to a file: `lakeshift failures --job j --run 3 "
        "--csv-file failed.csv`; once their cause is fixed, `lakeshift sync --job j "
        "--files-from failed.csv` retries just them"], lines


def test_a_sync_pass_plans_the_copy_mode_and_a_copy_names_its_own_flags() -> None:
    from lakeshift.cli.summary import failure_hints

    assert failure_hints(["server-copy"], command="sync")[0] == (
        "  server-copy: to stream what the service cannot copy itself: plan the job again "
        "with --copy-mode auto")
    # A kind whose hint names no flag of the job: no line on planning it again.
    assert failure_hints(["transient"], command="sync") == [
        "  transient: run the same command again: what was copied is skipped as identical, "
        "the rest is tried again"]
    assert failure_hints(["invalid-name", "missing"]) == [
        "  invalid-name: to skip these and go on: --skip-errors invalid-name; to rename "
        "instead a name the destination's rules reject: --invalid-names encode",
        "  missing: to skip these and go on: --skip-errors missing (they went after the "
        "listing)",
        "  to skip them all and go on: --skip-errors invalid-name,missing (one flag, "
        "comma-separated)"]


def test_a_keyed_sync_pass_s_missing_hint_names_no_listing() -> None:
    """A `sync --files-from` key the source does not have said "(they went after the
    listing)", though a keyed pass lists nothing: its hint says what is true there."""
    from lakeshift.cli.summary import failure_hints, job_failure_hints

    keyed = ("  missing: to skip these and go on: plan the job again with --skip-errors "
             "missing (the source has no object of these names: check the names in the "
             "list; or the objects went after it was made)")
    assert failure_hints(["missing"], command="sync", keyed=True)[0] == keyed
    stats = TransferStats(listed=0, copied=1, failed=2, failed_by_kind={"missing": 2},
                          started=1.0, finished=2.0)
    lines = job_failure_hints(stats, "sync", "--job j", 4, keyed=True)
    assert lines[0] == keyed, lines
    assert not any("listing" in line for line in lines), lines
    # A pass that listed (windows) keeps the listing's words; other kinds are as before.
    assert "(they went after the listing)" in job_failure_hints(stats, "sync", "--job j",
                                                                4)[0]
    assert failure_hints(["transient"], command="sync", keyed=True) == failure_hints(
        ["transient"], command="sync")


def test_a_copys_json_carries_the_hints_its_text_ends_with(
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    stats = TransferStats(listed=2, failed=2, failed_by_kind={"forbidden": 2},
                          started=1.0, finished=2.0)
    fails = [Failure(k, "forbidden", f"{k}: permission denied", 1) for k in ("a", "b")]
    print_summary(CopyResult(stats, failures=fails), "/s/", "/d/", as_json=True)
    assert json.loads(capsys.readouterr().out)["hints"] == [
        "forbidden: to skip these and go on: --skip-errors forbidden (or grant read access "
        "and run again)"]
