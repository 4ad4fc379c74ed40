"""Small parts of scan, archived errors and kept times, checked alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lakeshift.errors import ArchivedError, UsageError
from lakeshift.plan.prices import Traffic, egress, estimate, load_prices, write_operations
from lakeshift.plan.scan import _metadata_collisions
from lakeshift.stores.azure.rest import status_error
from lakeshift.stores.obstore_common import translate
from lakeshift.stores.props import format_time, parse_time


def test_archived_reads_are_their_own_class_never_retried() -> None:
    s3 = translate(RuntimeError("Generic S3 error: status 403: <Error><Code>InvalidObjectState"
                                "</Code></Error>"), "s3://b/k")
    azure = status_error(409, "BlobArchived", "az://c/k")
    for e in (s3, azure):
        assert isinstance(e, ArchivedError) and e.kind == "archived" and not e.retryable
        assert "--skip-errors archived" in str(e)


def test_egress_goes_through_the_volume_tiers() -> None:
    tiers = [[10, 0.1], [20, 0.05], [0, 0.01]]
    assert egress(tiers, 5) == pytest.approx(0.5)
    assert egress(tiers, 40) == pytest.approx(10 * 0.1 + 20 * 0.05 + 10 * 0.01)


def test_write_operations_per_request_or_per_unit() -> None:
    mib = 1024 * 1024
    assert write_operations(1, 8 * mib, 0) == 1
    assert write_operations(20 * mib, 8 * mib, 0) == 3 + 1   # three blocks and the commit
    assert write_operations(1, 8 * mib, 4 * mib) == 1
    assert write_operations(20 * mib, 8 * mib, 4 * mib) == 5 + 1


def test_the_shipped_table_states_where_its_figures_come_from() -> None:
    t = load_prices()
    assert t.currency == "USD" and t.date and t.region and t.sources
    assert t.classes["GLACIER"].archived and t.classes["Archive"].archived
    assert not t.classes["GLACIER_IR"].archived


def test_a_price_value_of_the_wrong_type_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "p.toml"
    p.write_text('[source.s3]\nread_per_1000 = "cheap"\n')
    with pytest.raises(UsageError, match=r"source\.s3\.read_per_1000: must be a float"):
        load_prices(p)


@pytest.mark.parametrize("text, key", [
    ("[source.s3]\nread_per_1000 = -0.4\n", r"source\.s3\.read_per_1000: must not be negative"),
    ("[source.s3]\nread_per_1000 = nan\n", r"source\.s3\.read_per_1000: must not be negative"),
    ("[source.s3]\negress_tiers_gb = [[10, -0.09]]\n",
     r"egress_tiers_gb: must be a list .* neither negative"),
])
def test_a_negative_price_is_refused(tmp_path, text, key) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(UsageError, match=key):
        load_prices(p)


@pytest.mark.parametrize("text, key", [
    ('regoin = "EU"\n', "regoin"),
    ('[sourse.s3]\nread_per_1000 = 1.0\n', "sourse"),
])
def test_an_unknown_top_level_price_key_is_named(tmp_path, text, key) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(UsageError, match=rf"--prices {p}: {key}: unknown key \(known: "):
        load_prices(p)


def test_each_price_section_states_its_region_and_the_estimate_says_which(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = load_prices()
    assert all(isinstance(v.get("region"), str) and v["region"]
               for v in (*t.source.values(), *t.destination.values()))
    c = estimate(t, "s3", "azure", Traffic(objects=1, bytes=10))
    assert c.region == (f"{t.source['s3']['region']} (source) → "
                        f"{t.destination['azure']['region']} (destination)")
    p = tmp_path / "p.toml"
    p.write_text('[source.s3]\nregion = "eu-west-1"\n')
    c = estimate(load_prices(p), "s3", "azure", Traffic())
    assert c.region.startswith("eu-west-1 (source) → ")
    c = estimate(load_prices(), "adl", "azure", Traffic())
    assert c.region.startswith("no prices for adl (source) → Azure East US"), c.region
    p.write_text('[source.s3]\nregion = 3\n')
    with pytest.raises(UsageError, match=r"source\.s3\.region: must be a str"):
        load_prices(p)


def test_metadata_keys_that_collide_once_encoded() -> None:
    assert _metadata_collisions({"team": "a", "a-b": "x"}) == []
    assert _metadata_collisions({"hdi_isfolder": "1"}) == [
        "hdi_isfolder (ADLS Gen2 reads hdi_isfolder as the folder flag: copied as "
        "lakeshift_hdi_isfolder)"]
    assert _metadata_collisions({"lakeshift_src_mtime": "x"}) == []  # carried on on purpose
    assert _metadata_collisions({"Team": "a", "team": "b"}) == ["Team / team (both team)"]


def test_kept_times_round_trip_to_the_microsecond() -> None:
    when = datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC)
    assert format_time(when) == "2024-05-01T12:34:56.123456Z"
    assert parse_time(format_time(when)) == when
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_a_small_total_is_not_rounded_away() -> None:
    t = load_prices()
    c = estimate(t, "s3", "azure", Traffic(objects=5000, bytes=5000, list_requests=5,
                                            read_requests=5000, write_ops=0))
    assert c.lines and sum(ln.amount for ln in c.lines) > 0
    assert c.total == round(sum(ln.amount for ln in c.lines), 4) > 0
    assert c.total < 0.005  # would have been 0.0 at 2 decimals
