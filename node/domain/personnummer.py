"""Swedish personal identity numbers: validation (date + Luhn) and one normal form.

The number identifies a child only on this node and in a plan invitation; it never enters an
exchange log or process log. Samordningsnummer (day + 60) are accepted too.
"""

from __future__ import annotations

import re
from datetime import date

from ..errors import InvalidInput

_PATTERN = re.compile(r"^(\d{2})?(\d{2})(\d{2})(\d{2})([-+]?)(\d{4})$", re.ASCII)


class PersonnummerError(InvalidInput, ValueError):
    """Not a valid personnummer; the message says what is wrong without echoing the number.
    A ``ValueError`` too, so a pydantic validator may raise it."""

    code = "personnummer_form"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def normalize_personnummer(text: str, today: date) -> str:
    """Return the 12-digit form ``YYYYMMDDNNNN``; raise ``PersonnummerError`` otherwise."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise PersonnummerError(
            "use the form YYYYMMDD-NNNN (or YYMMDD-NNNN)", code="personnummer_form"
        )
    century, yy, mm, dd, sep, tail = match.groups()
    day = int(dd)
    if day > 60:
        day -= 60  # samordningsnummer
    if century is None:
        year = 2000 + int(yy)
        if year > today.year:
            year -= 100
        if sep == "+":
            year -= 100
    else:
        year = int(century + yy)
    try:
        born = date(year, int(mm), day)
    except ValueError:
        raise PersonnummerError(
            "the date part is not a real date", code="personnummer_date"
        ) from None
    if born > today:
        raise PersonnummerError("the date part is in the future", code="personnummer_future")
    ten = f"{yy}{mm}{dd}{tail}"
    if not luhn_ok(ten):
        raise PersonnummerError("the check digit is wrong", code="personnummer_check")
    return f"{year:04d}{mm}{dd}{tail}"
