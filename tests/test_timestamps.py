"""One format per wire convention: our JSON, the original's display strings, HTTP, epoch ms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from passpost.timestamps import date_str, epoch_ms, http_date, iso, parse_http_date

MOMENT = datetime(2017, 8, 28, 12, 23, 28, tzinfo=UTC)


def test_each_convention_has_its_format() -> None:
    assert iso(MOMENT) == "2017-08-28T12:23:28Z"
    assert iso(MOMENT.replace(microsecond=5)) == "2017-08-28T12:23:28.000005Z"
    assert date_str(MOMENT) == "08/28/2017 12:23:28 PM UTC"
    assert http_date(MOMENT) == "Mon, 28 Aug 2017 12:23:28 GMT"
    assert epoch_ms(MOMENT) == 1_503_923_008_000
    assert iso(None) is None and date_str(None) == ""


def test_naive_and_other_zones_are_written_in_utc() -> None:
    ist = MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    naive = MOMENT.replace(tzinfo=None)
    for moment in (ist, naive):
        assert iso(moment) == iso(MOMENT)
        assert date_str(moment) == date_str(MOMENT)
        assert http_date(moment) == http_date(MOMENT)
        assert epoch_ms(moment) == epoch_ms(MOMENT)


def test_http_dates_round_trip_and_garbage_is_none() -> None:
    assert parse_http_date(http_date(MOMENT)) == MOMENT
    assert parse_http_date("Mon, 28 Aug 2017 12:23:28 -0000") == MOMENT
    assert parse_http_date("yesterday") is None and parse_http_date(None) is None
