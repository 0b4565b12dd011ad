"""One wording for every benchmark target: the target next to the figure, and met or missed."""
from __future__ import annotations


def at_most(figure: float, target: float, unit: str = "x") -> str:
    """``(target <= 4x): met`` when ``figure <= target``, else ``... missed``."""
    return f"(target <= {target:g}{unit}): {'met' if figure <= target else 'missed'}"


def at_least(figure: float, target: float, unit: str = "x") -> str:
    """``(target >= 5x): met`` when ``figure >= target``, else ``... missed``."""
    return f"(target >= {target:g}{unit}): {'met' if figure >= target else 'missed'}"
