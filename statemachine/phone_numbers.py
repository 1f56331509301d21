"""Phone numbers read as E.164, so one caller matches however the PBX wrote them.

PrimeVOX passes numbers in whatever format the carrier gave (``+15551234567``,
``15551234567``, ``5551234567``, ``anonymous``, empty). To tell that the
number an agent dialled is the caller who was missed, both are read as E.164
(``+`` and the international digits), with the tenant's default country
filling in what a national number leaves out. Only what can be read as a full
international number is a number here; anything else (extensions, short codes,
``anonymous``) is None and matches nothing.
"""

from __future__ import annotations

import re

NANP = "1"  # the North American Numbering Plan: US, Canada, much of the Caribbean

# Visual separators only (E.123): anything else in a number makes it no number.
_SEPARATORS = re.compile(r"[\s\-.()/]")
_NUMBER = re.compile(r"\+?[0-9]+")
_COUNTRY = re.compile(r"[1-9][0-9]{0,2}")
# E.164: at most 15 digits; the shortest numbers in use have 7 with their country code.
_MIN_DIGITS, _MAX_DIGITS = 7, 15
_NANP_NATIONAL = 10


def check_country(default_country: str) -> str:
    """Return ``default_country`` if it is a country calling code (1 to 3 digits, or "").

    Raises ValueError otherwise. "" means the tenant has no default country:
    only numbers written internationally are read.
    """
    if default_country and not _COUNTRY.fullmatch(default_country):
        raise ValueError(f"not a country calling code: {default_country!r}")
    return default_country


def _international(digits: str, plus: bool, country: str) -> str | None:
    """The international digits of a number, or None if it cannot be read as one."""
    if plus:
        return digits
    # The international call prefix: 011 in the NANP, 00 nearly everywhere else.
    exit_code = "011" if country == NANP else "00"
    if digits.startswith(exit_code):
        return digits[len(exit_code) :]
    if not country:
        return None
    if country == NANP:
        national = digits[1:] if len(digits) == _NANP_NATIONAL + 1 and digits[0] == NANP else digits
        # A NANP area code never starts with 0 or 1: anything else is no number.
        if len(national) == _NANP_NATIONAL and national[0] not in "01":
            return NANP + national
        return None
    if digits.startswith("0"):
        return country + digits[1:]  # the national trunk prefix
    if digits.startswith(country) and len(digits) >= len(country) + _MIN_DIGITS:
        return digits  # written internationally, without its "+"
    return None


def e164(number: str, default_country: str) -> str | None:
    """``number`` as ``+`` and its international digits; None if it is not a full number.

    Raises ValueError if ``default_country`` is not a country calling code.
    """
    country = check_country(default_country)
    if number.lstrip().startswith("+"):
        # "+44 (0)20 …": the bracketed trunk prefix is not dialled from abroad.
        number = number.replace("(0)", "", 1)
    compact = _SEPARATORS.sub("", number)
    if not _NUMBER.fullmatch(compact):
        return None  # empty, "anonymous", "*67…", letters: nobody to call back
    plus = compact.startswith("+")
    digits = _international(compact.lstrip("+"), plus, country)
    if digits is None or digits.startswith("0"):
        return None
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None
    return "+" + digits
