# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads of inheritance: what a table's partitions should carry (one
# query for the parent, one more for a template table) and what each of its partitions carries now (one query for
# all of them). SELECTs only; a constant number per table, whatever the partition count.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from typing import FrozenSet, Iterable, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import (
    Carry,
    Grant,
    IndexShape,
    Inheritance,
    Options,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableName
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog

# The privileges of table t (alias) and of its columns, as [grantee ('' for PUBLIC), privilege, grantable, column
# ('' for the table)]; a NULL relacl means the owner's default privileges (acldefault), which are spelled out.
_PRIVILEGES = """
ARRAY(SELECT ARRAY[coalesce(r.rolname::text, ''), x.privilege_type, x.is_grantable::text, '']
      FROM aclexplode(coalesce(t.relacl, acldefault('r', t.relowner))) x LEFT JOIN pg_roles r ON r.oid = x.grantee
      UNION ALL
      SELECT ARRAY[coalesce(r.rolname::text, ''), x.privilege_type, x.is_grantable::text, a.attname::text]
      FROM pg_attribute a CROSS JOIN LATERAL aclexplode(a.attacl) x LEFT JOIN pg_roles r ON r.oid = x.grantee
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL)
"""

# An index x of table t in schema ns as pg_get_indexdef prints it after `ON <table>`: `USING btree (id)`.
_SHAPE = """
'USING ' || substr(pg_get_indexdef(x.indexrelid),
                   strpos(pg_get_indexdef(x.indexrelid), ' ' || quote_ident(ns.nspname) || '.' || quote_ident(t.relname)
                                                         || ' USING ')
                   + length(quote_ident(ns.nspname) || '.' || quote_ident(t.relname)) + 8)
"""

# A relation's tablespace, the database's default one as NULL (which is what reltablespace 0 means).
_TABLESPACE = "CASE WHEN t.reltablespace IN (0, d.dattablespace) THEN NULL ELSE ts.spcname::text END"

# relreplident stays 'i' when its index is dropped, and the server then uses the default identity.
_IDENTITY = "CASE WHEN t.relreplident = 'i' AND ri.relname IS NULL THEN 'd' ELSE t.relreplident::text END, " \
            "ri.relname::text"

_JOINS = """
JOIN pg_namespace ns ON ns.oid = t.relnamespace
JOIN pg_database d ON d.datname = current_database()
LEFT JOIN pg_tablespace ts ON ts.oid = t.reltablespace
LEFT JOIN LATERAL (SELECT ic.relname FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                   WHERE x.indrelid = t.oid AND x.indisreplident) ri ON true
"""

# The parent: what it gives its partitions, and what the connecting role (the creator of partitions) may do. A table
# the creator makes in the schema starts with the privileges of its default ACLs (ALTER DEFAULT PRIVILEGES; a
# global entry replaces the built-in default, a schema's entry adds to it). Becoming the owner with OWNER TO needs
# SET ROLE to it (16 and newer; membership before) and the owner's CREATE on the schema; superusers need neither.
_PARENT_QUERY = """
SELECT ns.nspname::text, t.relname::text, pg_get_userbyid(t.relowner)::text, """ + _PRIVILEGES + """, """ + \
    _IDENTITY + """, am.amname::text, """ + _TABLESPACE + """, t.relpersistence = 'u',
       ARRAY(SELECT ARRAY[x.indisunique::text, """ + _SHAPE + """] FROM pg_index x WHERE x.indrelid = t.oid),
       ARRAY(SELECT ARRAY[a.attname::text, format_type(a.atttypid, a.atttypmod)] FROM pg_attribute a
             WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       u.rolname::text,
       ARRAY(SELECT ARRAY[coalesce(r.rolname::text, ''), x.privilege_type, x.is_grantable::text, '']
             FROM aclexplode(coalesce((SELECT g.defaclacl FROM pg_default_acl g WHERE g.defaclrole = u.oid
                                         AND g.defaclnamespace = 0 AND g.defaclobjtype = 'r'),
                                      acldefault('r', u.oid))) x LEFT JOIN pg_roles r ON r.oid = x.grantee
             UNION ALL
             SELECT ARRAY[coalesce(r.rolname::text, ''), x.privilege_type, x.is_grantable::text, '']
             FROM pg_default_acl g CROSS JOIN LATERAL aclexplode(g.defaclacl) x
             LEFT JOIN pg_roles r ON r.oid = x.grantee
             WHERE g.defaclrole = u.oid AND g.defaclnamespace = t.relnamespace AND g.defaclobjtype = 'r'),
       u.rolsuper,
       pg_has_role(u.oid, t.relowner, 'USAGE')
       AND CASE WHEN current_setting('server_version_num')::int >= 160000 THEN pg_has_role(u.oid, t.relowner, 'SET')
                ELSE pg_has_role(u.oid, t.relowner, 'MEMBER') END,
       has_schema_privilege(t.relowner, t.relnamespace, 'CREATE'),
       (SELECT CASE WHEN o.oid = d.dattablespace THEN NULL ELSE o.spcname::text END FROM pg_tablespace o
        WHERE o.spcname = %(tablespace)s)
FROM pg_class t""" + _JOINS + """
LEFT JOIN pg_am am ON am.oid = t.relam
JOIN pg_roles u ON u.rolname = current_user
WHERE t.oid = %(oid)s
"""

# The template table, found as the search_path finds it when it has no schema: its columns, storage parameters,
# privileges but its owner's own, and its valid indexes but those of exclusion constraints (which an index alone
# does not carry).
_TEMPLATE_QUERY = """
SELECT ns.nspname::text, t.relname::text, t.relkind::text,
       ARRAY(SELECT ARRAY[a.attname::text, format_type(a.atttypid, a.atttypmod)] FROM pg_attribute a
             WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       coalesce(t.reloptions, '{}'),
       """ + _PRIVILEGES + """,
       pg_get_userbyid(t.relowner)::text,
       ARRAY(SELECT ARRAY[x.indisunique::text, """ + _SHAPE + """] FROM pg_index x
             WHERE x.indrelid = t.oid AND x.indisvalid
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype = 'x'))
FROM pg_class t
JOIN pg_namespace ns ON ns.oid = t.relnamespace
WHERE t.relname = %(name)s
  AND (ns.nspname = %(schema)s::text OR (%(schema)s::text IS NULL AND ns.nspname = ANY (current_schemas(false))))
ORDER BY array_position(current_schemas(false), ns.nspname) NULLS LAST
LIMIT 1
"""

# Every partition of the parent: what it carries now, and its index attached to the parent's replica identity index.
_CARRY_QUERY = """
SELECT ns.nspname::text, t.relname::text, pg_get_userbyid(t.relowner)::text, """ + _PRIVILEGES + """, """ + \
    _IDENTITY + """,
       (SELECT ic.relname::text FROM pg_inherits ii
        JOIN pg_index x ON x.indexrelid = ii.inhrelid JOIN pg_class ic ON ic.oid = ii.inhrelid
        WHERE x.indrelid = t.oid
          AND ii.inhparent = (SELECT px.indexrelid FROM pg_index px WHERE px.indrelid = %(oid)s AND px.indisreplident)),
       coalesce(t.reloptions, '{}'), """ + _TABLESPACE + """,
       ARRAY(SELECT ARRAY[x.indisunique::text, x.indisvalid::text, ic.relname::text, """ + _SHAPE + """]
             FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid WHERE x.indrelid = t.oid),
       t.relkind = 'p'
FROM pg_inherits i
JOIN pg_class t ON t.oid = i.inhrelid""" + _JOINS + """
WHERE i.inhparent = %(oid)s
ORDER BY t.oid
"""


def _grants(rows: Iterable[Sequence[str]], but_for: Optional[str] = None) -> FrozenSet[Grant]:
    return frozenset(Grant(grantee or None, privilege, grantable == "true", column or None)
                     for grantee, privilege, grantable, column in rows if not (but_for and grantee == but_for))


def _shapes(rows: Iterable[Sequence[str]]) -> Tuple[IndexShape, ...]:
    return tuple(IndexShape(unique == "true", definition) for unique, definition in rows)


def _options(reloptions: Sequence[str]) -> Options:
    return tuple(sorted(tuple(option.split("=", 1)) for option in reloptions))


def _columns(rows: Sequence[Sequence[str]]) -> Tuple[Tuple[str, str], ...]:
    return tuple((name, kind) for name, kind in rows)


def read_inheritance(database, table_oid: int, template: Optional[TableName] = None,
                     tablespace: Optional[str] = None) -> Inheritance:
    """What the partitions of the table `table_oid` should carry: one query, and one more for a template table.

    `tablespace` is the option that overrides the parent's tablespace for new partitions. The Inheritance is read,
    not judged: _inherit.plan refuses a template that does not fit and a connecting role that cannot give the
    partitions their owner.
    """
    (schema, name, owner, privileges, identity, identity_index, access_method, parent_tablespace, unlogged, indexes,
     columns, creator, creator_privileges, superuser, can_become_owner, owner_can_create, wanted_tablespace) = \
        database.query(_PARENT_QUERY, {"oid": table_oid, "tablespace": tablespace})[0]
    inheritance = Inheritance(
        schema=schema, table=name, owner=owner, privileges=_grants(privileges), replica_identity=identity,
        identity_index=identity_index, access_method=access_method,
        tablespace=tablespace if tablespace is not None else parent_tablespace,
        expected_tablespace=wanted_tablespace if tablespace is not None else parent_tablespace,
        unlogged=bool(unlogged), parent_indexes=frozenset(_shapes(indexes)), parent_columns=_columns(columns),
        creator=creator, creator_privileges=_grants(creator_privileges), creator_is_superuser=bool(superuser),
        creator_can_become_owner=bool(can_become_owner), owner_can_create=bool(owner_can_create))
    return with_template(database, inheritance, template) if template is not None else inheritance


def with_template(database, inheritance: Inheritance, template: TableName) -> Inheritance:
    """`inheritance` with what the template table adds: storage parameters, privileges, indexes."""
    rows = database.query(_TEMPLATE_QUERY, {"name": template.name, "schema": template.schema})
    if not rows:
        db_catalog.resolve_schema(database, template)  # raises the error that names where it looked
    schema, name, relkind, columns, reloptions, privileges, owner, indexes = rows[0]
    return dataclasses.replace(
        inheritance, template="%s.%s" % (schema, name), template_relkind=relkind, template_columns=_columns(columns),
        reloptions=_options(reloptions), template_privileges=_grants(privileges, but_for=owner),
        template_indexes=_shapes(indexes))


def read_carries(database, table_oid: int) -> Tuple[Carry, ...]:
    """What each partition of the table carries now: one query for all of them."""
    carries = []
    for (schema, name, owner, privileges, identity, identity_index, match, reloptions, tablespace, indexes,
         partitioned) in database.query(_CARRY_QUERY, {"oid": table_oid}):
        carries.append(Carry(
            schema=schema, name=name, owner=owner, privileges=_grants(privileges), replica_identity=identity,
            identity_index=identity_index, parent_identity_match=match, reloptions=_options(reloptions),
            tablespace=tablespace, is_partitioned=bool(partitioned),
            indexes=frozenset(IndexShape(unique == "true", shape) for unique, valid, _name, shape in indexes
                              if valid == "true"),
            invalid_indexes=tuple((index, IndexShape(unique == "true", shape)) for unique, valid, index, shape
                                  in indexes if valid != "true")))
    return tuple(carries)
