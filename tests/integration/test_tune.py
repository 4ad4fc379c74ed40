"""`lakeshift tune SRC DST`: trials on a sample, a table, the best setting written into the
config's [run] table (which `run --config` uses), and no scratch left at the destination."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.engine.tune import CONCURRENCIES
from lakeshift.plan.jobconfig import load, write_run_settings
from tests import servers
from tests.doubles.fixtures import gen2  # noqa: F401 (a fixture)
from tests.e2e.cli import BIN, obeying_file_modes, one_clear_line
from tests.e2e.cli import lakeshift as cli
from tests.faultproxy import FaultProxy
from tests.helpers import blobs

MiB = 1024 * 1024
CONFIG = """[job]
name = "raw"

[source]
urls = ["s3://lake/raw/"]

[destination]
url = "az://lake/raw/"

[run]
# chosen by hand once
concurrency = 32
schedule = "every 30m"

[partitioning]
mode = "none"
"""


def _config(src: Path | str, dst: Path | str) -> str:
    """CONFIG for the job copying ``src`` into ``dst``."""
    return CONFIG.replace('"s3://lake/raw/"', f'"{src}"').replace('"az://lake/raw/"',
                                                                   f'"{dst}"')


def _tree(root: Path) -> dict[str, bytes]:
    files = {f"a/f-{i}.bin": os.urandom(i * 50_000 + 1) for i in range(8)}
    # Larger than every block size tried: the sample of 5 (listed first) gets all the trials.
    files["a/big.bin"] = os.urandom(17 * MiB)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_tune_writes_the_best_setting_into_the_config_and_leaves_nothing(
        tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    dst.mkdir()
    files = _tree(src)
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(_config(src, dst))

    res = lakeshift.tune(str(src), str(dst), config=cfg, sample_objects=5)

    assert res.sample_objects == 5
    assert len(res.trials) == len(CONCURRENCIES) + 4
    assert {t.setting.concurrency for t in res.trials} >= set(CONCURRENCIES)
    assert all(t.failed == 0 and t.objects == 5 for t in res.trials)
    assert res.best in [t.setting for t in res.trials]
    loaded = load(cfg)
    assert (loaded.concurrency, loaded.block_size, loaded.single_put_max) == (
        res.best.concurrency, res.best.block_size, res.best.single_put_max)
    text = cfg.read_text()
    assert "# chosen by hand once" in text and 'schedule = "every 30m"' in text
    # Sizes as a user writes them, read back identically (load, above).
    spelled = {4 * MiB: '"4MiB"', 8 * MiB: '"8MiB"', 16 * MiB: '"16MiB"', 0: '"0"',
               64 * MiB: '"64MiB"', 256 * MiB: '"256MiB"'}
    assert f"block_size = {spelled[res.best.block_size]}" in text
    assert f"single_put_max = {spelled[res.best.single_put_max]}" in text
    assert loaded.every_s == 1800 and loaded.mode == "none"
    assert list(dst.iterdir()) == []  # trials and their folders are gone
    assert {str(p.relative_to(src)) for p in src.rglob("*") if p.is_file()} == set(files)


def test_tune_on_blob_storage_deletes_its_trials(s3: Any, bucket: str, blob_service: Any,
                                                 container: str, cli_env: dict[str, str]
                                                 ) -> None:
    for i in range(6):
        s3.put_object(Bucket=bucket, Key=f"raw/o-{i}.bin", Body=os.urandom(20_000 + i))
    proc = subprocess.run([str(BIN), "tune", f"s3://{bucket}/raw/", f"az://{container}/raw/",
                           "--json"], env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # No object larger than a block: block sizes and single-put limits cannot matter, so
    # only the concurrencies are tried (each other trial would only time noise).
    assert out["sample_objects"] == 6 and len(out["trials"]) == len(CONCURRENCIES)
    assert {t["block_size"] for t in out["trials"]} == {8 * MiB}
    assert blobs(blob_service, container, "") == {}


def test_tune_on_blob_storage_leaves_nothing_when_a_trial_stops_midway(
        s3: Any, bucket: str, blob_service: Any, container: str, monkeypatch: Any) -> None:
    """A trial stopped after writing some of its objects (Ctrl-C, an error): on a flat
    namespace the scratch prefix is swept, so nothing of tune's is left."""
    import pytest

    from lakeshift.engine import tune as engine_tune

    for i in range(6):
        s3.put_object(Bucket=bucket, Key=f"raw/o-{i}.bin", Body=os.urandom(20_000 + i))
    blob_service.get_container_client(container).upload_blob("raw/mine.txt", b"user's")
    real = engine_tune.copy_object
    copied = 0

    async def copy_then_stop(ctx: Any, o: Any, key: str) -> Any:
        nonlocal copied
        result = await real(ctx, o, key)
        copied += 1
        if copied == 9:  # the first recorded trial, 3 of its 6 objects written
            raise RuntimeError("stopped midway")
        return result

    monkeypatch.setattr(engine_tune, "copy_object", copy_then_stop)
    with pytest.raises(RuntimeError, match="stopped midway"):
        lakeshift.tune(f"s3://{bucket}/raw/", f"az://{container}/raw/")
    assert copied >= 9
    assert list(blobs(blob_service, container, "")) == ["raw/mine.txt"]


def test_tune_refuses_a_config_it_cannot_read_before_any_trial(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    proc = subprocess.run([str(BIN), "tune", str(tmp_path / "src"), str(tmp_path / "dst"),
                           "--config", str(tmp_path / "missing.toml")], env=cli_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "cannot read config" in proc.stderr and "Traceback" not in proc.stderr
    assert "lakeshift init" in proc.stderr  # the fix for a missing file
    assert not (tmp_path / "dst").exists() or not any((tmp_path / "dst").iterdir())


def test_tune_refuses_a_config_it_cannot_write_before_any_trial(
        tmp_path: Path, cli_env: dict[str, str], monkeypatch: Any) -> None:
    """The best setting is written after the trials: a config that cannot be written is
    refused before them (it was an internal error with a traceback after all the trials)."""
    import shutil

    import pytest

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    config = tmp_path / "lakeshift.toml"
    config.write_text(_config(src, dst))
    if os.geteuid() == 0:  # root writes through permission bits: make the file immutable
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(config)], capture_output=True).returncode != 0:
            pytest.skip("root, and this file system has no immutable flag (chattr +i)")
    else:
        config.chmod(0o444)
    from lakeshift.engine import tune as engine_tune
    from lakeshift.errors import UsageError

    trials = 0

    async def trial(*args: Any) -> Any:
        nonlocal trials
        trials += 1
        raise AssertionError("a trial ran")

    monkeypatch.setattr(engine_tune, "_trial", trial)
    try:
        with pytest.raises(UsageError, match="cannot write config"):
            lakeshift.tune(str(src), str(dst), config=str(config))
        assert trials == 0
        proc = subprocess.run([str(BIN), "tune", str(src), str(dst), "--config", str(config)],
                              env=cli_env, capture_output=True, text=True, timeout=60)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(config)], check=True)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write config {config}" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not dst.exists()  # no trial ran


def test_run_settings_are_added_to_a_config_without_a_run_table(tmp_path: Path) -> None:
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(CONFIG.replace("[run]\n# chosen by hand once\nconcurrency = 32\n"
                                  'schedule = "every 30m"\n', ""))
    write_run_settings(cfg, {"concurrency": 16, "block_size": "16MiB"})
    loaded = load(cfg)
    assert (loaded.concurrency, loaded.block_size, loaded.single_put_max) == (16, 16 * MiB, None)


def test_tune_refuses_an_empty_sample_size_and_shows_its_run_table_in_help(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    proc = subprocess.run([str(BIN), "tune", str(tmp_path / "src"), str(tmp_path / "dst"),
                           "--sample-size", "0"], env=cli_env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--sample-size must be at least 1 byte" in proc.stderr
    helped = subprocess.run([str(BIN), "tune", "--help"], env={**cli_env, "COLUMNS": "200"},
                            capture_output=True, text=True, timeout=60)
    # "[run]" is Rich markup unless escaped: it used to vanish ("into its  table").
    assert helped.stdout.count("[run]") == 2 and "its  table" not in helped.stdout


def test_tune_cli_says_when_block_settings_were_not_tried(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f-{i}").write_bytes(os.urandom(1000))
    proc = subprocess.run([str(BIN), "tune", str(src), str(tmp_path / "dst")], env=cli_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "block size and single-put limit not tried" in proc.stdout
    assert "may be noise" in proc.stdout  # three 1 kB files copy in well under a second


def test_tune_refuses_a_pair_other_than_its_configs_before_any_trial(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    src, other = tmp_path / "src", tmp_path / "other"
    for root in (src, other):
        (root / "in").mkdir(parents=True)
        (root / "in" / "f").write_bytes(b"x")
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(_config(src, tmp_path / "dst"))
    before = cfg.read_text()
    for pair in ((other, tmp_path / "dst"), (src, tmp_path / "elsewhere")):
        proc = subprocess.run([str(BIN), "tune", *map(str, pair), "--config", str(cfg)],
                              env=cli_env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"{cfg} copies" in err and "leave out --config" in err
    assert cfg.read_text() == before
    assert not (tmp_path / "dst").exists() and not (tmp_path / "elsewhere").exists()
    # A folder of the job's source, into a folder of its destination: its own pair.
    res = lakeshift.tune(str(src / "in"), str(tmp_path / "dst" / "t"), config=cfg)
    assert load(cfg).concurrency == res.best.concurrency


def test_tune_removes_the_local_folders_it_made_and_creates_no_container(
        tmp_path: Path, cli_env: dict[str, str], blob_service: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(1000))
    lakeshift.tune(str(src), str(tmp_path / "new" / "deeper" / "dst"), sample_objects=1)
    assert list(tmp_path.iterdir()) == [src]  # new/deeper/dst made for the trials, removed
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("mine")
    lakeshift.tune(str(src), str(kept), sample_objects=1)
    assert [p.name for p in kept.iterdir()] == ["mine.txt"]  # only what it made goes
    missing = f"tune-missing-{os.getpid()}"
    proc = subprocess.run([str(BIN), "tune", str(src), f"az://{missing}/x/"], env=cli_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "create it first" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert missing not in [c.name for c in blob_service.list_containers()]


def test_tune_says_which_setting_it_did_not_try(
        tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    """Block sizes tried, single-put limits not (no object above the block size chosen):
    the result and the text say so."""
    from lakeshift.cli.app import run
    from lakeshift.engine import tune as engine_tune
    from lakeshift.model import Setting, Trial

    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(6 * MiB))  # above 4MiB, below 16MiB

    async def trial(src_: Any, dst: Any, sample: Any, base: str, scratch: str,
                    setting: Setting, policy: Any) -> tuple[Trial, dict[int, Any]]:
        # Bigger blocks are faster here: 16MiB wins, and the 6 MiB object fits in one.
        return Trial(setting, 1.0 / (setting.block_size / MiB), len(sample),
                     sum(o.size for o in sample), 0), {}

    monkeypatch.setattr(engine_tune, "_trial", trial)
    res = lakeshift.tune(str(src), str(tmp_path / "dst"))
    assert res.best.block_size == 16 * MiB
    assert list(res.not_tried) == ["single_put_max"]
    assert "larger than 16MiB (the block size chosen)" in res.not_tried["single_put_max"]
    assert run(["tune", str(src), str(tmp_path / "dst")]) == 0
    out = capsys.readouterr().out
    assert "(--single-put-max not tried: no object in the sample is larger than 16MiB " \
           "(the block size chosen), so it cannot matter for it; the best keeps 64MiB)" in out
    # The best line pastes as flags (it said "--block-size 16.0 MiB": two arguments).
    assert re.search(r"^Best: --concurrency \d+ --block-size 16MiB --single-put-max 64MiB ", out,
                     re.M)


def test_tune_on_adls_gen2_leaves_no_directory_it_made(blob_service: Any, tmp_path: Path,
                                                       request: Any) -> None:
    double = request.getfixturevalue("gen2")  # after blob_service: the double's account
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    for name in ("a/b/f1", "a/f2", "f3"):
        (src / name).write_bytes(os.urandom(3000))
    fs = f"fs{os.getpid()}x{len(str(tmp_path)) % 97}"
    blob_service.create_container(fs)
    from azure.storage.blob import BlobServiceClient

    # Through the double, as Gen2 writes it: with its folder "keep".
    BlobServiceClient.from_connection_string(double.connection_string()).get_container_client(
        fs).upload_blob("keep/mine.txt", b"mine")
    for root in (f"az://{fs}/keep/", f"az://{fs}/new/deeper/"):
        res = lakeshift.tune(str(src), root, sample_objects=3)
        assert res.trials and all(t.failed == 0 for t in res.trials)
    # Only what was there before: the trials' files, their folders (.lakeshift-tune-*/…)
    # and the destination folders made for them (new/, new/deeper/) are all gone.
    assert sorted(blobs(blob_service, fs, "")) == ["keep", "keep/mine.txt"]


def test_tune_on_adls_gen2_keeps_a_users_empty_folder_and_tunes_at_the_root(
        blob_service: Any, tmp_path: Path, request: Any) -> None:
    """A folder the user made (empty: say, its ACLs set for the migration) is not tune's to
    remove; the container's root as destination (no folder to look up) works too."""
    double = request.getfixturevalue("gen2")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(3000))
    fs = f"fr{os.getpid()}x{len(str(tmp_path)) % 97}"
    blob_service.create_container(fs)
    from azure.storage.filedatalake import DataLakeServiceClient

    DataLakeServiceClient.from_connection_string(double.connection_string()) \
        .get_file_system_client(fs).create_directory("empty/inner")
    before = sorted(blobs(blob_service, fs, ""))
    for root in (f"az://{fs}/empty/", f"az://{fs}/empty/inner/", f"az://{fs}/"):
        res = lakeshift.tune(str(src), root, sample_objects=1)
        assert res.trials and all(t.failed == 0 for t in res.trials)
        assert sorted(blobs(blob_service, fs, "")) == before, root


def test_tune_writes_no_size_it_did_not_try(tmp_path: Path) -> None:
    """Small objects: no block size tried, so the file's own sizes stay (an untried default
    written over them, 8MiB here, would be a guess put in the user's place)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(1000))
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(_config(src, tmp_path / "dst").replace(
        "concurrency = 32\n", 'concurrency = 32\nblock_size = "32MiB"\n'))
    res = lakeshift.tune(str(src), str(tmp_path / "dst"), config=cfg, sample_objects=1)
    assert "block_size" in res.not_tried
    loaded = load(cfg)
    assert (loaded.concurrency, loaded.block_size) == (res.best.concurrency, 32 * MiB)
    assert loaded.single_put_max is None


def test_tune_on_adls_gen2_keeps_what_a_run_writes_into_a_folder_it_made_meanwhile(
        blob_service: Any, tmp_path: Path, request: Any, monkeypatch: Any) -> None:
    """Tune removes a destination folder it made once it lists it empty; a run writing into
    it in the moment between that listing and the delete keeps its file: the delete is not
    recursive, and a folder that is not empty is left (silently: it is the run's now)."""
    import hashlib

    from lakeshift.model import ObjectProps
    from lakeshift.stores.azure.store import AzureBlobStore

    request.getfixturevalue("gen2")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(3000))
    fs = f"fw{os.getpid()}x{len(str(tmp_path)) % 97}"
    blob_service.create_container(fs)
    listed = AzureBlobStore.list_page
    landed: list[str] = []

    async def list_page(self: Any, prefix: str, *args: Any, **kw: Any) -> Any:
        page = await listed(self, prefix, *args, **kw)
        if prefix == "new/deeper/" and not page.objects and not landed:
            # Seen empty by tune; a run's file lands before tune's delete.
            await self.put("new/deeper/run.bin", b"a run's", ObjectProps(),
                           hashlib.md5(b"a run's").digest())
            landed.append(prefix)
        return page

    monkeypatch.setattr(AzureBlobStore, "list_page", list_page)
    res = lakeshift.tune(str(src), f"az://{fs}/new/deeper/", sample_objects=1)
    assert res.trials and all(t.failed == 0 for t in res.trials)
    assert landed
    # The run's file and its folders stay; tune's scratch is gone.
    assert sorted(blobs(blob_service, fs, "")) == ["new", "new/deeper", "new/deeper/run.bin"]


def test_tune_takes_its_configs_azure_pair_however_it_is_spelled(
        tmp_path: Path, blob_service: Any) -> None:
    """The config says abfss://FS@ACCOUNT.dfs.core.windows.net/raw/; tune is given
    az://FS/raw (the account from the credentials: the same one): the same place, tuned and
    written.  The same container of another account is refused before any trial."""
    from lakeshift.errors import UsageError
    from lakeshift.stores.azure.dev import DEV_ACCOUNT

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(3000))
    fs = f"fc{os.getpid()}x{len(str(tmp_path)) % 97}"
    blob_service.create_container(fs)
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(_config(f"{src}/", f"abfss://{fs}@{DEV_ACCOUNT}.dfs.core.windows.net/raw/"))
    res = lakeshift.tune(f"file://{src}", f"az://{fs}/raw", config=cfg, sample_objects=1)
    assert load(cfg).concurrency == res.best.concurrency
    assert blobs(blob_service, fs, "") == {}  # nothing left behind
    cfg.write_text(_config(src, f"abfss://{fs}@other{DEV_ACCOUNT[:8]}.dfs.core.windows.net/raw/"))
    before = cfg.read_text()
    with pytest.raises(UsageError, match="leave out --config"):
        lakeshift.tune(str(src), f"az://{fs}/raw", config=cfg, sample_objects=1)
    assert cfg.read_text() == before


def test_tune_config_trials_reach_the_stores_the_config_names(
        s3: Any, bucket: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    """The config's [source] names the S3 endpoint (the emulator); the command line names
    none and the environment's is a closed port: the trials reach the config's endpoint
    (they went to the environment's, and the pair was refused as another bucket)."""
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"raw/o-{i}.bin", Body=os.urandom(1000 + i))
    endpoint = cli_env["AWS_ENDPOINT_URL"]
    env = {**cli_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(_config(f"s3://{bucket}/raw/", tmp_path / "dst").replace(
        "[destination]", f's3_endpoint = "{endpoint}"\n\n[destination]'))
    proc = subprocess.run([str(BIN), "tune", f"s3://{bucket}/raw/", str(tmp_path / "dst"),
                           "--config", str(cfg), "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sample_objects"] == 3 and all(t["failed"] == 0 for t in out["trials"])
    assert load(cfg).concurrency == out["best"]["concurrency"]
    # A flag still wins: --s3-endpoint naming the closed port is another bucket than the
    # config's, refused before any trial.
    proc = subprocess.run([str(BIN), "tune", f"s3://{bucket}/raw/", str(tmp_path / "dst"),
                           "--config", str(cfg), "--s3-endpoint", "http://127.0.0.1:9"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "leave out --config" in proc.stderr, proc.stderr


# -- every trial failed: the user's cause gets copy's exit code and one line -------------------


def test_tune_with_every_source_object_unreadable_exits_as_copy_does(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Every object of a local source unreadable: copy fails each one (exit 1); tune ends
    with the same code and one line naming the error, how many had it and the fix (it was an
    internal error, exit 4, with no cause)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f-{i}.bin").write_bytes(os.urandom(1000 + i))
        (src / f"f-{i}.bin").chmod(0)
    dst = tmp_path / "dst"
    copy = cli("copy", str(src), str(tmp_path / "copied"), env=cli_env,
               prefix=obeying_file_modes())
    tune = cli("tune", str(src), str(dst), env=cli_env, prefix=obeying_file_modes())
    assert copy.returncode == 1, copy.stderr
    assert tune.returncode == copy.returncode, tune.stderr
    line = one_clear_line(tune)
    assert line.startswith("lakeshift: every trial failed: 3 of 3 objects each time; 3 of "
                           "them forbidden, the first: "), line
    assert "f-0.bin: permission denied" in line
    assert "let lakeshift read the source and write the destination" in line
    assert not dst.exists()  # the folder tune made for its trials is gone again


def _read_only_sas(container: str) -> str:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(servers.AZURITE_ACCOUNT, container, servers.AZURITE_KEY,
                                  permission=ContainerSasPermissions(read=True, list=True),
                                  expiry=datetime.now(UTC) + timedelta(hours=1))


def test_tune_into_a_container_that_refuses_writes_exits_as_copy_does(
        tmp_path: Path, cli_env: dict[str, str], azurite: servers.Server, container: str,
        blob_service: Any) -> None:
    """A SAS that may read and list the container but not write: each object's write is
    refused; copy fails each one (exit 1), tune says so in one line with the same code."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"o-{i}.bin").write_bytes(os.urandom(2000 + i))
    sas = _read_only_sas(container)
    env = {**cli_env, "AZURE_STORAGE_CONNECTION_STRING": (
        f"BlobEndpoint=http://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT};"
        f"SharedAccessSignature={sas}")}
    copy = cli("copy", str(src), f"az://{container}/copied/", env=env)
    tune = cli("tune", str(src), f"az://{container}/raw/", env=env)
    assert copy.returncode == 1, copy.stderr
    assert tune.returncode == copy.returncode, tune.stderr
    line = one_clear_line(tune)
    assert line.startswith("lakeshift: every trial failed: 4 of 4 objects each time; 4 of "
                           "them forbidden, the first: "), line
    assert "permission denied" in line and "lakeshift check SRC DST" in line
    signature = sas.split("sig=")[1].split("&")[0]
    assert signature not in tune.stdout + tune.stderr
    assert blobs(blob_service, container, "") == {}


def test_tune_stops_when_the_container_goes_away_as_copy_does(
        tmp_path: Path, cli_env: dict[str, str], azurite: servers.Server, container: str,
        blob_service: Any) -> None:
    """The container is there when tune starts, then every write is answered
    ContainerNotFound (deleted meanwhile): copy stops with exit 2 and one line; so does tune
    (it counted each object as failed, and ended with an internal error, exit 4)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"o-{i}.bin").write_bytes(os.urandom(1500 + i))
    proxy = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    try:
        proxy.add("status", method="PUT", path=r"lakeshift-tune-|/gone/", uses=10_000,
                  status=404, headers={"x-ms-error-code": "ContainerNotFound"})
        env = {**cli_env, "AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(
            azurite.port).replace(f"127.0.0.1:{azurite.port}", f"127.0.0.1:{proxy.port}")}
        copy = cli("copy", str(src), f"az://{container}/gone/", env=env)
        tune = cli("tune", str(src), f"az://{container}/raw/", env=env)
    finally:
        proxy.stop()
    assert copy.returncode == 2, copy.stderr
    assert tune.returncode == copy.returncode, tune.stderr
    assert "container/filesystem does not exist" in one_clear_line(tune)
    assert blobs(blob_service, container, "") == {}


def test_every_trial_failing_on_an_unclassified_error_stays_an_internal_error(
        tmp_path: Path, monkeypatch: Any) -> None:
    """An error lakeshift does not classify (not an object's: a bug, an answer it does not
    know) is not the user's: exit 4, as before, now naming it."""
    from lakeshift.engine import tune as engine_tune
    from lakeshift.errors import InternalError

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")

    async def broken(ctx: Any, o: Any, key: str) -> Any:
        raise InternalError(f"{o.key}: local copy helper: KeyError: 'x'")

    monkeypatch.setattr(engine_tune, "copy_object", broken)
    with pytest.raises(InternalError, match="every trial failed: 1 of 1 objects each time; "
                       "1 of them internal, the first: f: local copy helper") as e:
        lakeshift.tune(str(src), str(tmp_path / "dst"))
    assert e.value.exit_code == 4


def test_a_sample_that_copy_skips_whole_is_nothing_to_try(tmp_path: Path) -> None:
    """A source whose first objects are all ones copy skips (links to the destination
    folder, a symlink loop): the trials copied nothing, timed nothing, and the fastest of
    them was printed -- and with --config written -- as the best setting (exit 0).  Now
    it is refused as a source that lists nothing is, exit 2."""
    from lakeshift.errors import UsageError

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "to-dst").symlink_to("../dst")
    (src / "into-dst").symlink_to("../dst/x")
    (src / "loop").symlink_to("loop")
    with pytest.raises(UsageError) as e:
        lakeshift.tune(str(src), str(dst))
    assert str(e.value) == (f"{src}: nothing to try: copy skips each of the 3 objects of the "
                            "sample (symlink loops, links to the destination folder, special "
                            "files): tune a folder with files to copy")
    assert list(dst.iterdir()) == []  # the scratch folder is gone


# -- a few objects that fail in every trial: the rest is timed ---------------------------------


def test_tune_times_what_it_can_and_says_which_objects_it_left_out(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    """3 readable files and 1 with mode 000: the unreadable one blocked tune entirely
    ("every trial failed: 1 of 4 objects each time", exit 1, no table).  Now the trials time
    the 3 others, the table is printed, one line names the one left out and copy's flag."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f-{i}.bin").write_bytes(os.urandom(5000 + i))
    (src / "locked.bin").write_bytes(b"secret")
    (src / "locked.bin").chmod(0)
    dst = tmp_path / "dst"
    tune = cli("tune", str(src), str(dst), env=cli_env, prefix=obeying_file_modes())
    assert tune.returncode == 0, tune.stderr
    out = tune.stdout
    assert "<- best" in out and "Best: --concurrency" in out, out
    assert ("(1 of 4 objects left out of the timing: they failed in every trial: "
            "1 forbidden (locked.bin); lakeshift copy fails them too unless --skip-errors "
            "forbidden)") in out, out
    rows = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert len(rows) == len(CONCURRENCIES) and all(r[8] == "1" for r in rows), out
    assert not dst.exists()
    as_json = cli("tune", str(src), str(dst), "--json", env=cli_env,
                  prefix=obeying_file_modes())
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["left_out"] == {"forbidden": ["locked.bin"]} and doc["not_compared"] == []
    assert all(t["compared"] and t["failed"] == 1 for t in doc["trials"])


def test_tune_takes_copys_include_and_exclude(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The sample is made of the names --include / --exclude take, as copy's are; a glob
    that cannot work is refused as copy refuses it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.csv", "b.csv", "c.tmp"):
        (src / name).write_bytes(os.urandom(3000))
    (src / "locked.csv").write_bytes(b"x")
    (src / "locked.csv").chmod(0)
    dst = tmp_path / "dst"
    tune = cli("tune", str(src), str(dst), "--exclude", "locked.*", "--exclude", "*.tmp",
               "--json", env=cli_env, prefix=obeying_file_modes())
    assert tune.returncode == 0, tune.stderr
    doc = json.loads(tune.stdout)
    assert doc["sample_objects"] == 2 and doc["left_out"] == {}, doc
    assert all(t["failed"] == 0 for t in doc["trials"])
    only = cli("tune", str(src), str(dst), "--include", "*.tmp", "--json", env=cli_env)
    assert only.returncode == 0 and json.loads(only.stdout)["sample_objects"] == 1, only.stderr
    none = cli("tune", str(src), str(dst), "--include", "*.parquet", env=cli_env)
    assert none.returncode == 2
    assert "nothing to try: the source lists no object that --include/--exclude take" in \
        one_clear_line(none)
    bad = cli("tune", str(src), str(dst), "--include", "a[b", env=cli_env)
    assert bad.returncode == 2 and "has no closing ']'" in one_clear_line(bad)
    assert not dst.exists()


def _failing(monkeypatch: Any, fails: Any) -> list[int]:
    """copy_object failing ``fails(trial, key)``'s error (None: copied) in each trial (the
    warm-up is trial -1); returns the trial counter."""
    from lakeshift.engine import tune as engine_tune

    real = engine_tune.copy_object
    trial = [-1]
    real_trial = engine_tune._trial

    async def counted(*args: Any) -> Any:
        try:
            return await real_trial(*args)
        finally:
            trial[0] += 1

    async def copy(ctx: Any, o: Any, key: str) -> Any:
        error = fails(trial[0], o.key.rsplit("/", 1)[-1])
        if error is not None:
            raise error
        return await real(ctx, o, key)

    monkeypatch.setattr(engine_tune, "copy_object", copy)
    monkeypatch.setattr(engine_tune, "_trial", counted)
    return trial


def test_trials_that_failed_other_objects_are_not_compared(
        tmp_path: Path, monkeypatch: Any) -> None:
    """One object fails (transient, retried out) in the second trial only: that trial timed
    3 objects, the others 4: it is not compared, and the best is one of the others."""
    from lakeshift.errors import TransientError

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"f-{i}").write_bytes(os.urandom(2000))
    _failing(monkeypatch, lambda n, name: TransientError(f"{name}: reset") if
             (n, name) == (1, "f-2") else None)
    res = lakeshift.tune(str(src), str(tmp_path / "dst"))
    assert res.not_compared == [1] and res.left_out == {}
    assert res.best != res.trials[1].setting
    assert [t.failed for t in res.trials] == [0, 1, 0]


def test_no_winner_from_trials_that_each_failed_other_objects(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Each trial fails another object (flaky): no two timed the same work, so no winner is
    picked (it was the fastest clean one, or "every trial failed"): one line says why."""
    from lakeshift.errors import ForbiddenError

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"f-{i}").write_bytes(os.urandom(2000))
    _failing(monkeypatch, lambda n, name: ForbiddenError(f"{name}: permission denied") if
             n >= 0 and name == f"f-{n}" else None)
    with pytest.raises(lakeshift.LakeshiftError) as e:
        lakeshift.tune(str(src), str(tmp_path / "dst"))
    assert str(e.value).startswith(
        "no winner: the trials failed different objects (3 of 4 failed in some trials and "
        "not in others: forbidden; the first: f-0: permission denied)"), e.value
    assert e.value.exit_code == 1
    assert not (tmp_path / "dst").exists()  # the folder tune made for its trials is gone
