# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: partition bounds parsed from pg_get_expr(relpartbound), never from names.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    INTEGER_KEY_TYPES,
    MAXVALUE,
    MINVALUE,
    HashBounds,
    ListBounds,
    RangeBounds,
    TIME_KEY_TYPES,
)

_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|([^\s,()']+)|(\()|(\))|(,))")
_TZ_SUFFIX = re.compile(r"([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?$")
_FRACTION = re.compile(r"\.(\d{1,6})$")
# The bound nearly every partition has: one value each side, read without the general tokenizer.
_SINGLE_RANGE = re.compile(r"FOR VALUES FROM \((?:'((?:[^']|'')*)'|([^\s,()']+))\) "
                           r"TO \((?:'((?:[^']|'')*)'|([^\s,()']+))\)$")
# What PostgreSQL prints for timestamptz in the session's UTC (prepare_session) at whole seconds.
_UTC_SECONDS = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\+00$")


def _iso(text):
    """datetime.fromisoformat of Python 3.9 wants 0, 3 or 6 fraction digits; PostgreSQL trims zeros."""
    return dt.datetime.fromisoformat(_FRACTION.sub(lambda m: "." + m.group(1).ljust(6, "0"), text))


def _value_token(quoted, word):
    """A quoted literal (its doubled quotes undone) or a bare word, as a token."""
    return ("q", quoted.replace("''", "'")) if quoted is not None else ("w", word)


def _tokens(text):
    """Quoted literals, bare words and punctuation of a bound expression; quoted ones come back as ('q', text)."""
    position = 0
    tokens = []
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise CatalogError("cannot parse partition bound %r near %r" % (text, text[position:]))
        quoted, word, opening, closing, comma = match.groups()
        if quoted is not None or word is not None:
            tokens.append(_value_token(quoted, word))
        else:
            tokens.append(("p", opening or closing or comma))
        position = match.end()
    return tokens


def _groups(tokens):
    """The parenthesised lists of a bound, as lists of tokens (keyword tokens between them are dropped)."""
    groups, current = [], None
    for token in tokens:
        if token == ("p", "("):
            current = []
        elif token == ("p", ")"):
            groups.append(current)
            current = None
        elif current is not None and token != ("p", ","):
            current.append(token)
    return groups


def parse_timestamp(text: str, key_type: str) -> Any:
    text = text.strip()
    if key_type == "timestamp with time zone":
        whole = _UTC_SECONDS.match(text)
        if whole:
            return dt.datetime(*map(int, whole.groups()), tzinfo=dt.timezone.utc)
    if key_type == "date":
        return dt.date.fromisoformat(text)
    if key_type == "timestamp without time zone":
        return _iso(text)
    return _with_offset(text)


def _with_offset(text):
    """Any timestamptz text with its UTC offset (hours, minutes, seconds), as an aware datetime in UTC."""
    match = _TZ_SUFFIX.search(text)
    if not match:
        raise ValueError("no UTC offset in %r" % text)
    hours, minutes, seconds = match.group(1), match.group(2) or "00", match.group(3) or "00"
    sign = -1 if hours.startswith("-") else 1
    offset = dt.timedelta(hours=abs(int(hours)), minutes=int(minutes), seconds=int(seconds)) * sign
    naive = _iso(text[: match.start()])
    return naive.replace(tzinfo=dt.timezone(offset)).astimezone(dt.timezone.utc)


def parse_value(token: Tuple[str, str], key_type: str) -> Any:
    """One bound value in the key's type; MINVALUE/MAXVALUE (and +-infinity) as the unbounded sentinels."""
    kind, text = token
    if kind == "w" and text.upper() in ("MINVALUE", "MAXVALUE"):
        return MINVALUE if text.upper() == "MINVALUE" else MAXVALUE
    if text in ("infinity", "-infinity"):
        return MAXVALUE if text == "infinity" else MINVALUE
    if key_type not in TIME_KEY_TYPES + INTEGER_KEY_TYPES:
        return text
    try:
        if key_type in TIME_KEY_TYPES:
            return parse_timestamp(text, key_type)
        number = Decimal(text)
        if not number.is_finite():  # 'Infinity', 'NaN': no integer key holds them
            raise ValueError(text)
        return int(number) if number == number.to_integral_value() else number
    except (ValueError, InvalidOperation):
        raise CatalogError("cannot read partition bound value %r as %s" % (text, key_type))


def parse_bound(expression: str, key_type: str) -> Any:
    """RangeBounds, ListBounds or HashBounds from pg_get_expr(relpartbound); None for DEFAULT."""
    text = expression.strip()
    upper = text.upper()
    if upper == "DEFAULT":
        return None
    single = _SINGLE_RANGE.match(text)
    if single:
        lower_quoted, lower_word, upper_quoted, upper_word = single.groups()
        return RangeBounds(parse_value(_value_token(lower_quoted, lower_word), key_type),
                           parse_value(_value_token(upper_quoted, upper_word), key_type))
    return _parse_tokens(text, key_type)


def _parse_tokens(expression, key_type):
    """Any bound but DEFAULT, through the tokenizer (parse_bound reads the common single-value range without it)."""
    upper = expression.upper()
    tokens = _tokens(expression)
    groups = _groups(tokens)
    if not groups or any(group is None for group in groups):
        raise CatalogError("cannot parse partition bound %r" % expression)
    if upper.startswith("FOR VALUES FROM"):
        if len(groups) != 2 or len(groups[0]) != 1 or len(groups[1]) != 1:
            raise CatalogError("multi-column range bounds are not supported: %r" % expression)
        return RangeBounds(parse_value(groups[0][0], key_type), parse_value(groups[1][0], key_type))
    if upper.startswith("FOR VALUES IN"):
        values = tuple(None if token == ("w", "NULL") else token[1] for token in groups[0])
        return ListBounds(values)
    if upper.startswith("FOR VALUES WITH"):
        words = [token[1].lower() for token in groups[0]]
        try:
            return HashBounds(int(words[words.index("modulus") + 1]), int(words[words.index("remainder") + 1]))
        except (ValueError, IndexError):
            raise CatalogError("cannot parse hash partition bound %r" % expression)
    raise CatalogError("unknown partition bound %r" % expression)


def canonical_list_value(value: Any) -> Optional[str]:
    """The text PostgreSQL prints for a LIST value given in YAML, so wanted and existing sets compare."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
