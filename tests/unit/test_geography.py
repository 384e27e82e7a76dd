"""Tests for the country centroid table and haversine distance."""

import pytest

from domain.geography import COUNTRY_CENTROIDS, distance_km, locate

REQUIRED = [
    "NL",
    "DE",
    "BE",
    "FR",
    "ES",
    "PT",
    "IT",
    "AT",
    "CH",
    "PL",
    "DK",
    "SE",
    "NO",
    "FI",
    "IE",
    "GB",
    "CZ",
    "US",
    "CA",
]


def test_every_required_country_is_located() -> None:
    for country in REQUIRED:
        destination = locate(country, "1000")
        assert destination is not None, country
        assert -90 <= destination.latitude <= 90
        assert -180 <= destination.longitude <= 180
    assert set(REQUIRED) <= set(COUNTRY_CENTROIDS)


def test_locate_normalises_country_and_keeps_postal_code() -> None:
    destination = locate(" nl ", " 1011 AB ")
    assert destination is not None
    assert destination.country == "NL"
    assert destination.postal_code == "1011 AB"
    assert (destination.latitude, destination.longitude) == COUNTRY_CENTROIDS["NL"]


def test_unknown_country_is_none() -> None:
    assert locate("XX", "12345") is None
    assert locate("", "") is None


def test_us_zip_refines_to_a_region() -> None:
    new_york = locate("US", "10001")
    los_angeles = locate("US", "90001")
    no_zip = locate("US", "")
    assert new_york is not None and los_angeles is not None and no_zip is not None
    coast_to_coast = distance_km(
        new_york.latitude, new_york.longitude, los_angeles.latitude, los_angeles.longitude
    )
    assert 3500 < coast_to_coast < 4500
    assert (no_zip.latitude, no_zip.longitude) == COUNTRY_CENTROIDS["US"]


def test_distance_known_city_pair() -> None:
    # Amsterdam to Paris is about 430 km as the crow flies.
    assert distance_km(52.37, 4.90, 48.86, 2.35) == pytest.approx(430, abs=10)


def test_distance_is_zero_for_same_point_and_symmetric() -> None:
    assert distance_km(52.0, 5.0, 52.0, 5.0) == 0.0
    there = distance_km(40.2, -3.6, 64.0, 26.0)
    back = distance_km(64.0, 26.0, 40.2, -3.6)
    assert there == pytest.approx(back)


def test_distance_antipodes_is_half_circumference() -> None:
    assert distance_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(20015, abs=5)
