"""The arguments a printed command needs to reach a job again (cli/job_cmds.again_args),
and the cancelled run's hint, which the CLI tests cannot easily reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.core import ParameterSource

from lakeshift.cli.job_cmds import _print_run, again_args
from lakeshift.cli.text import StopNotice
from lakeshift.model import RunResult
from lakeshift.plan.jobconfig import load


def test_a_db_flag_is_named_redacted() -> None:
    args = again_args("j", "postgresql://mig:s3cretpw@db.example/lake",
                      ParameterSource.COMMANDLINE)
    assert args == "--job j --db 'postgresql://mig:***@db.example/lake'"


@pytest.mark.parametrize("source", [ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT])
def test_a_db_from_the_environment_or_the_default_is_not(source: ParameterSource) -> None:
    assert again_args("my job", "sqlite:///x.db", source) == "--job 'my job'"


def test_the_default_db_is_not_named_even_as_a_flag() -> None:
    assert again_args("j", "sqlite:///lakeshift.db", ParameterSource.COMMANDLINE) == "--job j"


def test_a_db_from_the_config_file_is_named(tmp_path: Path) -> None:
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('[job]\nname = "j"\ndb = "sqlite:///c.db"\n[source]\nurls = ["/s/"]\n'
                        '[destination]\nurl = "/d/"\n[run]\nconcurrency = 8\n')
    cfg = load(cfg_path)
    assert cfg.given == {"name", "db", "concurrency"}
    assert again_args("j", "sqlite:///c.db", ParameterSource.ENVIRONMENT, cfg) == \
        "--job j --db sqlite:///c.db"


def test_a_cancelled_run_says_how_to_continue_it(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StopNotice, "given", False)  # the call sets it: restored after
    result = RunResult(run_id=3, cancelled=True, remaining_pending=2, job="mon")
    _print_run(result, False, db="sqlite:///mon.db", again="--job mon --db sqlite:///mon.db",
               config=Path("my lake.toml"))
    out = capsys.readouterr().out
    assert "of job 'mon' in sqlite:///mon.db:" in out
    assert ("`lakeshift run --config 'my lake.toml' --job mon --db sqlite:///mon.db` "
            "continues it") in out, out


def test_a_sync_pass_hint_carries_the_db_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from lakeshift.cli.sync_cmd import _print
    from lakeshift.reports import SyncResult

    r = SyncResult(job="j", run=RunResult(run_id=1, job="j"), kept=2)
    _print(r, False, "0", False, None, ("sqlite:///s.db", ParameterSource.COMMANDLINE))
    assert "(lakeshift failures --job j --db sqlite:///s.db)" in capsys.readouterr().out
    _print(r, False, "0", False, None, ("sqlite:///s.db", ParameterSource.ENVIRONMENT))
    assert "(lakeshift failures --job j)" in capsys.readouterr().out
