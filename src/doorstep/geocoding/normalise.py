"""Street names and house numbers in a form that compares equal however they are written:
accents, case, punctuation and the usual abbreviations (``av.`` = ``avenue``, ``bd`` =
``boulevard``, ``1er`` = ``Ier`` = ``premier``, ``st`` = ``saint``)."""

from __future__ import annotations

import re
import unicodedata

ABBREVIATIONS: dict[str, str] = {
    # French (Monaco, France)
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "blvd": "boulevard",
    "bvd": "boulevard",
    "r": "rue",
    "ch": "chemin",
    "che": "chemin",
    "pl": "place",
    "imp": "impasse",
    "all": "allee",
    "rte": "route",
    "sq": "square",
    "esc": "escalier",
    "st": "saint",
    "ste": "sainte",
    "gal": "general",
    "gen": "general",
    "mal": "marechal",
    "pdt": "president",
    "prom": "promenade",
    "fbg": "faubourg",
    # roman and ordinal forms of "first" in street names ("Quai Antoine 1er")
    "ier": "1er",
    "premier": "1er",
    "i": "1er",
    "ii": "2",
    "iii": "3",
    # English
    "rd": "road",
    "dr": "drive",
    "ln": "lane",
}

_NUMBER = re.compile(r"^(\d+)\s*(bis|ter|quater|[a-z])?\b", re.IGNORECASE)
_NUMBER_AT_END = re.compile(r"[\s,]+(\d+)\s*(bis|ter|quater|[a-z])?\s*$", re.IGNORECASE)


def fold(text: str) -> str:
    """Lower case, no accents, letters and digits only, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.replace("ß", "ss").replace("ø", "o").replace("æ", "ae").replace("œ", "oe")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain.lower()).split())


def street_key(name: str) -> str:
    """The comparable form of a street name."""
    words = fold(name).split()
    return " ".join(ABBREVIATIONS.get(w, w) for w in words)


def number_key(number: str) -> str:
    """``12 bis`` / ``12bis`` / ``12 B`` → ``12bis`` / ``12b``; other forms folded."""
    return fold(number).replace(" ", "")


def number_value(number: str) -> int | None:
    """The integer part of a house number (``12bis`` → 12), for interpolation."""
    match = re.match(r"\d+", number)
    return int(match.group()) if match else None


def split_line(line: str) -> tuple[str | None, str]:
    """``12 bis, Rue Grimaldi`` → (``12bis``, ``Rue Grimaldi``); ``Mannerheimintie 5`` →
    (``5``, ``Mannerheimintie``); a line without a number → (None, line)."""
    text = line.strip()
    match = _NUMBER.match(text)
    if match:
        rest = text[match.end() :].lstrip(" ,")
        if rest:
            return number_key(match.group(1) + (match.group(2) or "")), rest
    match = _NUMBER_AT_END.search(text)
    if match and text[: match.start()].strip():
        return number_key(match.group(1) + (match.group(2) or "")), text[: match.start()].strip()
    return None, text
