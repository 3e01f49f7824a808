"""Unit conversion for the units tool: a table of factors to one base unit per dimension, temperature apart."""
from __future__ import annotations

import math

from tutor.agents.calc import MAX_NUMBER, format_number
from tutor.errors import TutorError

# Factor to the dimension's base unit (metre, kilogram, litre, second). Exact by definition where one exists:
# 1 in = 2.54 cm, 1 lb = 0.45359237 kg, 1 US gal = 3.785411784 l.
_FACTORS = {
    "length": {"m": 1, "km": 1000, "cm": 0.01, "mm": 0.001, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048,
               "in": 0.0254},
    "mass": {"kg": 1, "g": 0.001, "mg": 1e-6, "t": 1000, "lb": 0.45359237, "oz": 0.028349523125},
    "volume": {"l": 1, "ml": 0.001, "cl": 0.01, "gal": 3.785411784, "cup": 0.2365882365, "floz": 0.0295735295625},
    "time": {"s": 1, "min": 60, "h": 3600, "day": 86400, "week": 604800},
}
_ALIASES = {
    "metre": "m", "meter": "m", "kilometre": "km", "kilometer": "km", "centimetre": "cm", "centimeter": "cm",
    "millimetre": "mm", "millimeter": "mm", "mile": "mi", "yard": "yd", "foot": "ft", "feet": "ft", "inch": "in",
    "inches": "in", "kilogram": "kg", "kilo": "kg", "gram": "g", "milligram": "mg", "tonne": "t", "ton": "t",
    "pound": "lb", "lbs": "lb", "ounce": "oz", "litre": "l", "liter": "l", "millilitre": "ml", "milliliter": "ml",
    "gallon": "gal", "second": "s", "sec": "s", "minute": "min", "hour": "h", "hr": "h", "days": "day",
    "weeks": "week", "celsius": "c", "°c": "c", "fahrenheit": "f", "°f": "f", "kelvin": "k",
}
_TEMPERATURE = ("c", "f", "k")


class UnitError(TutorError):
    """The units are unknown or of different kinds; the message lists what works."""


def canonical(unit: str) -> str:
    text = unit.strip().lower().replace(" ", "").rstrip(".")
    if text in _ALIASES:
        return _ALIASES[text]
    if text.endswith("s") and text[:-1] in _ALIASES:  # "miles", "kilometres", "pounds"
        return _ALIASES[text[:-1]]
    if text.endswith("s") and _dimension(text[:-1]):  # "kms"
        return text[:-1]
    return text


def _dimension(unit: str) -> str | None:
    if unit in _TEMPERATURE:
        return "temperature"
    return next((name for name, table in _FACTORS.items() if unit in table), None)


def convert(value: float, from_unit: str, to_unit: str) -> str:
    """``"26.2 mi = 42.16 km"``; UnitError when the value or units are unusable."""
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise UnitError(f"the value must be a finite number up to {MAX_NUMBER:g}")
    source, target = canonical(from_unit), canonical(to_unit)
    kinds = _dimension(source), _dimension(target)
    for unit, kind, given in ((source, kinds[0], from_unit), (target, kinds[1], to_unit)):
        if kind is None:
            known = ", ".join(u for table in _FACTORS.values() for u in table)
            raise UnitError(f"'{given[:20]}' is not a unit I know; use one of {known}, C, F, K")
    if kinds[0] != kinds[1]:
        raise UnitError(f"cannot convert {kinds[0]} ({from_unit}) to {kinds[1]} ({to_unit})")
    if kinds[0] == "temperature":
        celsius = {"c": value, "f": (value - 32) * 5 / 9, "k": value - 273.15}[source]
        result = {"c": celsius, "f": celsius * 9 / 5 + 32, "k": celsius + 273.15}[target]
    else:
        table = _FACTORS[kinds[0]]
        result = value * table[source] / table[target]
    # Four significant decimals are more than any everyday question needs and hide float noise.
    shown = format_number(round(result, 4) if abs(result) >= 1 else float(f"{result:.4g}"))
    return f"{format_number(value)} {source.upper() if kinds[0] == 'temperature' else source} = {shown} " \
           f"{target.upper() if kinds[0] == 'temperature' else target}"
