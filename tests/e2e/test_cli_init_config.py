"""What ``lakeshift init`` writes: one control DB whichever folder the config is run from,
and no empty value where the environment decides (the S3 endpoint)."""

from __future__ import annotations

import shlex
import subprocess
import tomllib
from pathlib import Path

from lakeshift.plan.jobconfig import load
from tests.e2e.cli import BIN, one_clear_line


def _init(out: str, answers: list[str], env: dict[str, str],
          cwd: Path) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(BIN), "init", "-o", out], input="\n".join(answers) + "\n",
                       env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def _local_answers(src: Path, dst: Path, db: str) -> list[str]:
    # source, destination, connection test, partitioning, job, DB, batch, concurrency, schedule
    return [str(src), str(dst), "n", "none", "j", db, "1", "4", "once"]


def test_the_control_db_is_one_file_whichever_folder_run_starts_in(
        local_env: dict[str, str], tmp_path: Path) -> None:
    job, elsewhere, src = tmp_path / "job", tmp_path / "elsewhere", tmp_path / "in"
    for folder in (job, elsewhere, src):
        folder.mkdir()
    (src / "a.txt").write_text("a")
    dst = tmp_path / "out"
    # The default: lakeshift.db beside the config, written absolute.
    _init("lakeshift.toml", _local_answers(src, dst, ""), local_env, job)
    cfg = job / "lakeshift.toml"
    assert tomllib.loads(cfg.read_text())["job"]["db"] == f"sqlite:///{job / 'lakeshift.db'}"
    r = subprocess.run([str(BIN), "run", "--config", str(cfg)], env=local_env, cwd=elsewhere,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (dst / "a.txt").read_text() == "a"
    # The run used the DB init named (it made a second one in the folder run started in).
    assert (job / "lakeshift.db").exists() and list(elsewhere.iterdir()) == []
    # A relative path typed at the prompt is from the folder init runs in, written absolute.
    _init("sub/other.toml", _local_answers(src, dst, "sqlite:///state/j.db?timeout=5"),
          local_env, job)
    written = tomllib.loads((job / "sub" / "other.toml").read_text())["job"]["db"]
    assert written == f"sqlite:///{job / 'state' / 'j.db'}?timeout=5"
    # Not SQLite, or already absolute: as given.
    for db in ("postgresql://lake@127.0.0.1/lake", f"sqlite:///{tmp_path / 'abs.db'}"):
        _init("third.toml", _local_answers(src, dst, db), local_env, job)
        cfg3 = job / "third.toml"
        assert tomllib.loads(cfg3.read_text())["job"]["db"] == db
        cfg3.unlink()


def test_a_sqlite_uri_filename_is_written_as_the_file_it_names(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``sqlite:///file:state/j.db?uri=true`` names state/j.db under the folder init runs
    in; it was written as ``sqlite:////HERE/file:state/j.db?uri=true`` (a file named
    ``file:state``…, or no file at all)."""
    job, elsewhere, src = tmp_path / "job", tmp_path / "elsewhere", tmp_path / "in"
    for folder in (job, elsewhere, src, job / "state"):
        folder.mkdir()
    (src / "a.txt").write_text("a")
    dst = tmp_path / "out"
    _init("j.toml", _local_answers(src, dst, "sqlite:///file:state/j.db?uri=true&timeout=5"),
          local_env, job)
    cfg = job / "j.toml"
    written = tomllib.loads(cfg.read_text())["job"]["db"]
    assert written == f"sqlite:///{job / 'state' / 'j.db'}?timeout=5"
    r = subprocess.run([str(BIN), "run", "--config", str(cfg)], env=local_env, cwd=elsewhere,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (dst / "a.txt").read_text() == "a"
    assert (job / "state" / "j.db").is_file() and list(elsewhere.iterdir()) == []
    # SQLite's own URI parameters cannot go into a file path: a URI filename, its path
    # absolute (written as typed, it named another file from each folder `run` started in),
    # the query as typed; a folder name SQLite's URI reading would cut (?, #, %) survives.
    typed = "sqlite:///file:state/k.db?mode=rwc&uri=true"
    for here in (job, tmp_path / "odd %41 ?#x"):  # (in a name: what a URI would cut)
        (here / "state").mkdir(parents=True, exist_ok=True)
        _init("k.toml", _local_answers(src, dst, typed), local_env, here)
        written = tomllib.loads((here / "k.toml").read_text())["job"]["db"]
        if here == job:
            assert written == f"sqlite:///file:{job}/state/k.db?mode=rwc&uri=true"
        r = subprocess.run([str(BIN), "run", "--config", str(here / "k.toml")],
                           env=local_env, cwd=elsewhere, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (here / "state" / "k.db").is_file(), (written, list(here.rglob("*")))
        assert list(elsewhere.iterdir()) == []


def test_a_control_db_the_control_db_refuses_to_open_is_refused_by_init(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """``sqlite://`` and ``sqlite:///:memory:`` were written, and every ``run --config``
    then refused them: init refuses what opening refuses, in one line (exit 2), and asks
    again while answers come."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for wrong in ("sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"):
        answers = _local_answers(src, dst, wrong)
        p = subprocess.run([str(BIN), "init", "-o", "no.toml"],
                           input="\n".join(answers[:6]) + "\n", env=local_env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and not (tmp_path / "no.toml").exists(), p.stdout + p.stderr
        line = one_clear_line(p)
        assert f"{wrong!r}: the control DB must be a file, not memory" in line, line
        answers.insert(6, "sqlite:///k.db")  # asked again: a good one
        _init("yes.toml", answers, local_env, tmp_path)
        assert tomllib.loads((tmp_path / "yes.toml").read_text())["job"]["db"] == \
            f"sqlite:///{tmp_path / 'k.db'}"
        (tmp_path / "yes.toml").unlink()


def test_a_blank_s3_endpoint_is_left_to_the_environment_not_written_empty(
        local_env: dict[str, str], tmp_path: Path) -> None:
    env = {**local_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    # source, destination, AWS credentials, S3 endpoint, then as for local folders
    answers = ["s3://lake/raw/", str(tmp_path / "out"), "env", "", "n", "none", "j", "",
               "1", "4", "once"]
    p = _init("blank.toml", answers, env, tmp_path)
    assert "blank: AWS_ENDPOINT_URL at each run, now http://127.0.0.1:9" in p.stdout
    source = tomllib.loads((tmp_path / "blank.toml").read_text())["source"]
    # Left out (an empty string reads as set to a reader of the file), and so is an unset
    # profile (AWS_PROFILE decides); load() takes a missing key as unset.
    assert "s3_endpoint" not in source and "aws_profile" not in source, source
    store = load(tmp_path / "blank.toml").store
    assert store.s3_endpoint is None and store.aws_profile is None
    # An endpoint typed is written as its value.
    answers[3] = "http://127.0.0.1:9000"
    _init("typed.toml", answers, env, tmp_path)
    assert tomllib.loads((tmp_path / "typed.toml").read_text())["source"]["s3_endpoint"] == \
        "http://127.0.0.1:9000"
    assert load(tmp_path / "typed.toml").store.s3_endpoint == "http://127.0.0.1:9000"


def test_the_loader_reads_an_empty_endpoint_as_a_missing_one(tmp_path: Path) -> None:
    """A hand-written ``s3_endpoint = ""`` means what init's missing key means: unset."""
    base = '[job]\nname = "j"\n[source]\nurls = ["s3://lake/"]\n{}[destination]\nurl = "/o"\n'
    for i, line in enumerate(('s3_endpoint = ""\naws_profile = ""\n', "")):
        cfg = tmp_path / f"c{i}.toml"
        cfg.write_text(base.format(line))
        store = load(cfg).store
        assert store.s3_endpoint is None and store.aws_profile is None


def test_relative_local_paths_are_written_absolute_and_the_commands_paste(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """Local source and destination typed relative are from the folder init runs in, as the
    control DB's path is: run from another folder first, the config read ``in`` and wrote
    ``out`` there (or refused a source that is not there).  The commands init prints quote
    each value: the default DB sits in the config's folder, whose name may hold a space."""
    job, elsewhere = tmp_path / "my job", tmp_path / "elsewhere"
    for folder in (job / "in", elsewhere):
        folder.mkdir(parents=True)
    (job / "in" / "a.txt").write_text("a")
    p = _init("lakeshift.toml", ["in/", "out", "n", "none", "j j", "", "1", "4", "once"],
              local_env, job)
    written = tomllib.loads((job / "lakeshift.toml").read_text())
    assert written["source"]["urls"] == [f"{job / 'in'}/"]
    assert written["destination"]["url"] == str(job / "out")
    r = subprocess.run([str(BIN), "run", "--config", str(job / "lakeshift.toml")],
                       env=local_env, cwd=elsewhere, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (job / "out" / "a.txt").read_text() == "a" and list(elsewhere.iterdir()) == []
    lines = [ln.strip() for ln in p.stdout.splitlines()]
    plan = shlex.split(next(ln for ln in lines if ln.startswith("lakeshift plan ")))
    run = shlex.split(next(ln for ln in lines if ln.startswith("lakeshift run --job")))
    db = f"sqlite:///{job / 'lakeshift.db'}"
    assert plan[2:4] == [f"{job / 'in'}/", str(job / "out")], plan
    for words in (plan, run):
        assert words[words.index("--db") + 1] == db and words[words.index("--job") + 1] == "j j"


def test_a_control_db_url_with_a_password_or_no_url_is_asked_again(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A password typed in the DB URL was written to the config (whose header says no
    credential is stored there) and printed in the flags; a bare path was written, which
    ``run --config`` then refused as a malformed DB URL.  Both are asked again; without
    another answer, the wrong one is the error (exit 2), its password hidden."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    secret = "s3cretPW-42"
    answers = _local_answers(src, dst, f"postgresql://lake:{secret}@127.0.0.1:9/lake")
    p = subprocess.run([str(BIN), "init", "-o", "stops.toml"],
                       input="\n".join(answers[:6]) + "\n", env=local_env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and not (tmp_path / "stops.toml").exists(), p.stdout + p.stderr
    assert "without a password (it belongs in ~/.pgpass or PGPASSWORD" in p.stderr
    assert secret not in p.stdout + p.stderr
    for wrong in (f"postgresql://lake:{secret}@127.0.0.1:9/lake", "lakeshift.db"):
        answers = _local_answers(src, dst, wrong)
        answers.insert(6, "postgresql://lake@127.0.0.1:9/lake")  # asked again: a good one
        p = _init("again.toml", answers, local_env, tmp_path)
        written = (tmp_path / "again.toml").read_text()
        assert tomllib.loads(written)["job"]["db"] == "postgresql://lake@127.0.0.1:9/lake"
        assert secret not in written + p.stdout + p.stderr
        (tmp_path / "again.toml").unlink()


# -- a failed connection test: change the answers, or write it knowing -------------------------


def _init_with(answers: list[str], env: dict[str, str], cwd: Path,
               out: str = "lakeshift.toml") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "init", "-o", out], input="\n".join(answers) + "\n",
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def _failing_pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A source that is there, one that is not, and a destination folder that is."""
    good, dst = tmp_path / "in", tmp_path / "out"
    good.mkdir()
    dst.mkdir()
    (good / "a.txt").write_text("a")
    return good, tmp_path / "missing", dst


_REST = ["none", "j", "", "1", "4", "once"]  # partitioning … schedule


def test_a_failed_connection_test_asks_again_for_the_failing_store(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """It printed FAIL, then went on as if nothing happened and wrote the config (exit 0).
    Now it asks whether to change the answers: "change" asks again for the store that
    failed (its earlier answer the default) and tests again."""
    good, missing, dst = _failing_pair(tmp_path)
    # The destination fails (a file in the way: a folder that does not exist yet is fine,
    # the copy creates it): only its question comes again.
    (tmp_path / "plain.txt").write_text("in the way")
    nowhere = tmp_path / "plain.txt" / "nowhere"
    p = _init_with([str(good), str(nowhere), "y", "change", str(dst), *_REST],
                   local_env, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "FAIL destination" in p.stdout
    assert p.stdout.count("Source URL(s)") == 1
    assert p.stdout.count("Destination URL") == 2
    assert f"Destination URL (abfss://FS@ACCOUNT.dfs.core.windows.net/path, az://…, " \
           f"s3://…) or a local folder's path [{nowhere}]" in p.stdout  # the earlier answer
    assert p.stdout.count("ok   destination reach and list") == 1 and p.stderr == ""
    cfg = load(tmp_path / "lakeshift.toml")
    assert (cfg.sources, cfg.destination) == ([str(good)], str(dst))
    # The source fails: its question comes again; the destination's answer kept (Enter).
    p = _init_with([str(missing), str(dst), "y", "change", str(good), "", *_REST],
                   local_env, tmp_path, "second.toml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("Source URL(s)") == 2 and "wrote second.toml" in p.stdout
    cfg = load(tmp_path / "second.toml")
    assert (cfg.sources, cfg.destination) == ([str(good)], str(dst))


def test_a_config_written_after_a_failed_test_says_so(local_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    """"write": the config is written as answered (exit 0) and a last line says the test
    failed and how to test again; a wrong answer is asked again."""
    _, missing, dst = _failing_pair(tmp_path)
    p = _init_with([str(missing), str(dst), "y", "maybe", "write", *_REST], local_env,
                   tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  change or write" in p.stdout
    assert load(tmp_path / "lakeshift.toml").sources == [str(missing)]
    assert p.stderr.strip() == (
        f"warning: written anyway, but the connection test failed (source {missing} or "
        f"destination): fix it, then test again with: lakeshift check {missing} {dst}")


def test_no_answer_after_a_failed_test_writes_nothing(local_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    """No stdin left (CI) at the question: nothing is written, one line, exit 2; no hang."""
    _, missing, dst = _failing_pair(tmp_path)
    p = _init_with([str(missing), str(dst), "y"], local_env, tmp_path)
    assert p.returncode == 2
    assert one_clear_line(p) == (
        "lakeshift: init: the connection test failed and no answer came to 'change the "
        "answers, or write the config anyway?': nothing written; fix the connection and run "
        "init again")
    assert not (tmp_path / "lakeshift.toml").exists()
