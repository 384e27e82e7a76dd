"""Rough country centroids and great-circle distances for routing estimates."""

from math import asin, cos, radians, sin, sqrt

from domain.fulfilment import Destination

EARTH_RADIUS_KM = 6371.0

# Approximate geographic centroids (latitude, longitude). Routing only needs "which warehouse is
# nearer" and a transit-day estimate, so country-level precision is good enough.
COUNTRY_CENTROIDS: dict[str, tuple[float, float]] = {
    "AT": (47.6, 14.1),
    "BE": (50.6, 4.6),
    "BG": (42.7, 25.5),
    "CA": (56.1, -106.3),
    "CH": (46.8, 8.2),
    "CZ": (49.8, 15.5),
    "DE": (51.2, 10.4),
    "DK": (56.0, 10.0),
    "EE": (58.6, 25.0),
    "ES": (40.2, -3.6),
    "FI": (64.0, 26.0),
    "FR": (46.6, 2.4),
    "GB": (54.0, -2.5),
    "GR": (39.1, 22.0),
    "HR": (45.1, 15.2),
    "HU": (47.2, 19.5),
    "IE": (53.2, -8.2),
    "IT": (42.8, 12.6),
    "LT": (55.2, 23.9),
    "LU": (49.8, 6.1),
    "LV": (56.9, 24.6),
    "NL": (52.1, 5.3),
    "NO": (64.5, 12.0),
    "PL": (52.1, 19.4),
    "PT": (39.6, -8.0),
    "RO": (45.9, 25.0),
    "SE": (62.0, 15.0),
    "SI": (46.1, 14.8),
    "SK": (48.7, 19.7),
    "US": (39.8, -98.6),
}

# The US is too wide for one centroid (a coast-to-coast error of ~2000 km); the first ZIP digit
# names a contiguous group of states, which is enough for a transit estimate.
US_ZIP_REGIONS: dict[str, tuple[float, float]] = {
    "0": (42.0, -72.0),  # New England, NJ
    "1": (41.5, -76.0),  # NY, PA, DE
    "2": (37.0, -78.5),  # DC, MD, VA, WV, NC, SC
    "3": (32.5, -84.5),  # FL, GA, AL, TN, MS
    "4": (40.5, -84.5),  # IN, KY, MI, OH
    "5": (44.5, -95.0),  # IA, MN, MT, ND, SD, WI
    "6": (39.5, -93.0),  # IL, KS, MO, NE
    "7": (32.0, -95.5),  # AR, LA, OK, TX
    "8": (39.0, -110.0),  # AZ, CO, ID, NM, NV, UT, WY
    "9": (38.5, -121.0),  # CA, OR, WA
}


def locate(country: str, postal_code: str) -> Destination | None:
    """Place a shipping address on the map, roughly.

    Args:
        country: ISO 3166-1 alpha-2 code (case-insensitive).
        postal_code: the postal code as written on the address.

    Returns:
        A destination at the country centroid (a regional centroid for US ZIP codes), or None
        when the country is not in the table.
    """
    code = country.strip().upper()
    postal = postal_code.strip()
    point = COUNTRY_CENTROIDS.get(code)
    if point is None:
        return None
    if code == "US" and postal[:1] in US_ZIP_REGIONS:
        point = US_ZIP_REGIONS[postal[:1]]
    return Destination(country=code, postal_code=postal, latitude=point[0], longitude=point[1])


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points (haversine formula).

    Args:
        lat1: latitude of the first point, degrees.
        lon1: longitude of the first point, degrees.
        lat2: latitude of the second point, degrees.
        lon2: longitude of the second point, degrees.

    Returns:
        The distance in kilometres on a spherical Earth.
    """
    phi1, phi2 = radians(lat1), radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = radians(lon2 - lon1)
    h = sin(d_phi / 2) ** 2 + cos(phi1) * cos(phi2) * sin(d_lambda / 2) ** 2
    # min() guards against h creeping above 1 through float error for antipodal points.
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))
