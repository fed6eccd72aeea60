# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: names the engine gives to relations (partitions, conversion tables, renamed
# indexes): at most 63 bytes, unique for long parents, and templates checked before use. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import re
import string
from typing import Iterable, Mapping, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError

MAX_NAME_BYTES = 63
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_$]+$")


def partition_name(parent: str, suffix: str, template: Optional[str] = None,
                   fields: Optional[Mapping[str, str]] = None) -> str:
    """<parent>_<suffix> (or the template), at most 63 bytes: the parent part is shortened, never the suffix.

    A shortened parent part carries a hash of the full parent name, so two long parents sharing a prefix
    still get distinct names.
    """
    template = template or "{parent}_{suffix}"
    values = dict(fields or {}, suffix=suffix)
    name = template.format(parent=parent, **values)
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    tag = "_" + hashlib.sha256(parent.encode()).hexdigest()[:6]
    room = MAX_NAME_BYTES - len(template.format(parent=tag, **values).encode())
    if room < 1 or "{parent}" not in template:
        raise PlanError("partition suffix %r is too long for a 63-byte name" % suffix)
    return template.format(parent=parent.encode()[:room].decode("utf-8", "ignore") + tag, **values)


def _template_parts(template: str) -> list:
    try:
        return list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PlanError("name_template %r is not a valid template: %s" % (template, exc))


def check_template_text(template: Optional[str]) -> None:
    """The text around a name_template's fields must keep names plain identifiers: letters, digits, '_' and '$'
    (no quotes, spaces, semicolons or control characters), so that every name it makes reads back unquoted."""
    if template is None:
        return
    odd = sorted({char for literal, _field, _spec, _conversion in _template_parts(template) for char in literal
                  if not PLAIN_NAME.match(char)})
    if odd:
        raise PlanError("name_template %r has %s outside its fields; partition names may hold letters, digits, '_' "
                        "and '$' only" % (template, ", ".join(repr(char) for char in odd)))


def validate_template(template: Optional[str], allowed: Iterable[str]) -> None:
    if template is None:
        return
    allowed = set(allowed)
    check_template_text(template)
    names = {parsed[1] for parsed in _template_parts(template) if parsed[1] is not None}
    unknown = sorted(name for name in names if name not in allowed)
    if unknown:
        raise PlanError(
            "name_template %r uses unknown field(s) %s; known: %s"
            % (template, ", ".join(unknown), ", ".join(sorted(allowed)))
        )
