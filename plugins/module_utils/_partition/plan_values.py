# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: planning LIST and HASH partitions, and the checks of LIST values against the key's
# type. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import List, Mapping, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import canonical_list_value
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    INTEGER_KEY_TYPES,
    CreatePartition,
    HashBounds,
    ListBounds,
    PartitionPolicy,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import partition_name, validate_template

NUMBER_KEY_TYPES = INTEGER_KEY_TYPES + ("real", "double precision")


def _refuse_foreign_value(state, suffix, value):
    """A YAML boolean fits a boolean key only and a YAML number a numeric one only: written to a text key, false
    becomes the text 'false', which is not what anyone meant."""
    fits = (state.key_type == "boolean" if isinstance(value, bool) else
            state.key_type in NUMBER_KEY_TYPES if isinstance(value, (int, float)) else True)
    if not fits:
        raise PlanError("%s.%s: list_partitions[%r] holds %r, a %s, but the key %s is %s; quote it if you mean the "
                        "text %r" % (state.schema, state.name, suffix, value, type(value).__name__, state.key,
                                     state.key_type, canonical_list_value(value)))


def list_values(policy: PartitionPolicy) -> List[str]:
    """Every non-NULL LIST value of the policy, as canonical text, for the catalog to cast to the key's type."""
    return sorted({canonical_list_value(value) for values in (policy.list_partitions or {}).values()
                   if isinstance(values, (list, tuple)) for value in values if value is not None})


def refuse_inexact_list_values(state: TableState, casts: Mapping[str, Optional[str]]) -> None:
    """Each LIST value must be the key type's own spelling of itself (casts: value -> the key type's text of it,
    None where it does not cast at all). A value PostgreSQL spells otherwise ('01' for an integer, 'TRUE' for a
    boolean) would never match the partition bound read back, and every run would plan the partition again."""
    for value, cast in sorted(casts.items()):
        if cast is None:
            raise PlanError("%s.%s: LIST value %r is not a valid %s (the type of the key %s)"
                            % (state.schema, state.name, value, state.key_type, state.key))
        if cast != value:
            raise PlanError("%s.%s: LIST value %r is %r as %s; write it as %r"
                            % (state.schema, state.name, value, cast, state.key_type, cast))


def plan_list(state: TableState, policy: PartitionPolicy) -> List[CreatePartition]:
    wanted = policy.list_partitions or {}
    if not isinstance(wanted, dict):
        raise PlanError("list_partitions must be a mapping of name suffix -> list of values")
    validate_template(policy.name_template, {"parent", "suffix"})
    existing = [p for p in state.partitions if isinstance(p.bounds, ListBounds)]
    claimed = {}
    actions = []
    for suffix, values in wanted.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise PlanError("list_partitions[%r] must be a non-empty list of values" % (suffix,))
        for value in values:
            _refuse_foreign_value(state, suffix, value)
        canonical = frozenset(canonical_list_value(value) for value in values)
        for value in canonical:
            if value in claimed:
                raise PlanError(
                    "list_partitions: value %r is listed under both %r and %r" % (value, claimed[value], suffix)
                )
            claimed[value] = suffix
        name = partition_name(state.name, str(suffix), policy.name_template)
        if any(frozenset(p.bounds.values) == canonical for p in existing):
            continue
        clash = next((p for p in existing if canonical & frozenset(p.bounds.values)), None)
        if clash is not None:
            raise PlanError(
                "%s.%s: planned LIST partition %s %s shares values with existing partition %s %s; nothing was "
                "created" % (state.schema, state.name, name, sorted(canonical, key=str), clash.name,
                             list(clash.bounds.values))
            )
        actions.append(CreatePartition(state.schema, name, ListBounds(tuple(sorted(canonical, key=str))),
                                       values=tuple(values)))
    return actions


def plan_hash(state: TableState, policy: PartitionPolicy) -> List[CreatePartition]:
    modulus = policy.hash_modulus
    if modulus is None or modulus < 1:
        raise PlanError("%s.%s is HASH partitioned: hash_modulus must be a positive integer"
                        % (state.schema, state.name))
    validate_template(policy.name_template, {"parent", "suffix"})
    existing = [p for p in state.partitions if isinstance(p.bounds, HashBounds)]
    other = next((p for p in existing if p.bounds.modulus != modulus), None)
    if other is not None:
        raise PlanError(
            "%s.%s: existing partition %s has modulus %d, not hash_modulus %d; changing the modulus needs a "
            "rebuild of the set" % (state.schema, state.name, other.name, other.bounds.modulus, modulus)
        )
    have = {p.bounds.remainder for p in existing}
    return [
        CreatePartition(state.schema, partition_name(state.name, "hash_%d" % remainder, policy.name_template),
                        HashBounds(modulus, remainder))
        for remainder in range(modulus) if remainder not in have
    ]
