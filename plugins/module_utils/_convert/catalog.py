# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads of a conversion, SELECTs only: the conversion's relations, a
# table's columns, keys, foreign keys, grants, sequences and dependents (a constant number of queries per table),
# the existing keys, the copy's remaining rows and the verification of both tables in one snapshot.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import model, render
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import MIRROR_TRIGGER, TRUNCATE_TRIGGER
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Grant
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Relation, TableState

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")

_RELATIONS_QUERY = """
SELECT c.relname::text, c.oid, c.relkind::text, obj_description(c.oid, 'pg_class'),
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = %(trigger)s AND t.tgenabled <> 'D')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY (%(names)s)
"""

_RELATION_QUERY = """
SELECT n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %(oid)s
"""

_COLUMNS_QUERY = """
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL), a.attgenerated <> ''
FROM pg_attribute a WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

_INDEXES_QUERY = """
SELECT i.indexrelid, ic.relname::text,
       ARRAY(SELECT coalesce(a.attname::text, '') FROM generate_series(0, i.indnkeyatts - 1) AS k(n)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] ORDER BY k.n),
       i.indisprimary, i.indisunique, i.indexprs IS NOT NULL OR i.indpred IS NOT NULL,
       substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$'),
       coalesce((SELECT con.contype::text FROM pg_constraint con
                 WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                   AND con.contype IN ('p', 'u', 'x')), '')
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = %(oid)s
ORDER BY ic.relname
"""

_FOREIGN_KEYS_QUERY = """
SELECT con.conname::text, cn.nspname::text, cr.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       fn.nspname::text, fr.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
       con.confmatchtype::text, con.confupdtype::text, con.confdeltype::text, con.condeferrable, con.condeferred,
       cr.relkind = 'p', con.confrelid = %(oid)s
FROM pg_constraint con
JOIN pg_class cr ON cr.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cr.relnamespace
JOIN pg_class fr ON fr.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = fr.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND (con.confrelid = %(oid)s OR con.conrelid = %(oid)s)
ORDER BY 1, 2, 3
"""

_GRANTS_QUERY = """
SELECT r.rolname::text, x.privilege_type, x.is_grantable, NULL::text
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS x LEFT JOIN pg_roles r ON r.oid = x.grantee
WHERE c.oid = %(oid)s AND x.grantee <> c.relowner
UNION ALL
SELECT r.rolname::text, x.privilege_type, x.is_grantable, a.attname::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
CROSS JOIN LATERAL aclexplode(a.attacl) AS x LEFT JOIN pg_roles r ON r.oid = x.grantee
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped AND x.grantee <> c.relowner
"""

_SEQUENCES_QUERY = """
SELECT a.attname::text, d.deptype = 'i', s.oid, sn.nspname::text, s.relname::text
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s
  AND d.deptype IN ('a', 'i')
ORDER BY 1
"""

# Objects that read the table by oid: after a swap they would read the retired table.
_DEPENDENTS_QUERY = """
SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass THEN
         (SELECT CASE v.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                 ELSE 'rule ' || w.rulename || ' on ' END || vn.nspname || '.' || v.relname
          FROM pg_rewrite w JOIN pg_class v ON v.oid = w.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
          WHERE w.oid = d.objid)
       ELSE 'function ' || d.objid::regprocedure::text END
FROM pg_depend d
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s AND d.deptype = 'n'
  AND (d.classid = 'pg_proc'::regclass
       OR d.classid = 'pg_rewrite'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_rewrite w WHERE w.oid = d.objid AND w.ev_class = %(oid)s))
ORDER BY 1
"""

# What a conversion does not carry over to the new table: reported, so nobody finds out in production.
_NOT_CARRIED_QUERY = """
SELECT 'trigger ' || t.tgname FROM pg_trigger t
WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgname <> ALL (%(ours)s)
UNION ALL SELECT 'rule ' || r.rulename FROM pg_rewrite r WHERE r.ev_class = %(oid)s AND r.rulename <> '_RETURN'
UNION ALL SELECT 'row level security policy ' || p.polname FROM pg_policy p WHERE p.polrelid = %(oid)s
UNION ALL SELECT 'row level security' FROM pg_class c WHERE c.oid = %(oid)s AND c.relrowsecurity
UNION ALL SELECT 'publication ' || pub.pubname FROM pg_publication_rel pr
          JOIN pg_publication pub ON pub.oid = pr.prpubid WHERE pr.prrelid = %(oid)s
ORDER BY 1
"""

_MIRROR_ENABLED_QUERY = ("SELECT count(*) FROM pg_trigger WHERE tgrelid = %s AND tgname = %s AND tgenabled <> 'D'")


def read_facts(database, names: model.Names) -> model.ConversionFacts:
    """The conversion's three relations (live, partitioned copy, retired original) as they are now."""
    found = {}
    for name, oid, relkind, comment, mirrored in database.query(_RELATIONS_QUERY, {
            "trigger": MIRROR_TRIGGER, "schema": names.schema,
            "names": [names.live, names.partitioned, names.retired]}):
        found[name] = Relation(oid=oid, relkind=relkind, comment=comment, mirrored=mirrored)
    return model.ConversionFacts(names, found.get(names.live), found.get(names.partitioned), found.get(names.retired))


def read_table(database, oid: int) -> model.SourceTable:
    """The SourceTable of any relation of the conversion: columns, keys, foreign keys, grants, sequences."""
    rows = database.query(_RELATION_QUERY, {"oid": oid})
    if not rows:
        raise CatalogError("relation %s disappeared during the run" % oid)
    schema, name, owner, relkind = rows[0]
    args = {"oid": oid, "ours": [MIRROR_TRIGGER, TRUNCATE_TRIGGER]}
    columns = tuple(model.Column(*row) for row in database.query(_COLUMNS_QUERY, args))
    indexes = tuple(model.Index(oid=row[0], name=row[1], columns=tuple(row[2]), primary=row[3], unique=row[4],
                                partial_or_expression=row[5], shape=row[6] or "", constraint=row[7])
                    for row in database.query(_INDEXES_QUERY, args))
    incoming, outgoing = [], []
    for row in database.query(_FOREIGN_KEYS_QUERY, args):
        fk = model.ForeignKey(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], tuple(row[6]), *row[7:13])
        (incoming if row[13] else outgoing).append(fk)
    grants = tuple(Grant(grantee, privilege, grantable, column)
                   for grantee, privilege, grantable, column in database.query(_GRANTS_QUERY, args)
                   if privilege in PRIVILEGES)
    sequences = tuple(model.OwnedSequence(*row) for row in database.query(_SEQUENCES_QUERY, args))
    return model.SourceTable(
        oid=oid, schema=schema, name=name, owner=owner, columns=columns, indexes=indexes, incoming=tuple(incoming),
        outgoing=tuple(outgoing), grants=grants, sequences=sequences, relkind=relkind,
        dependents=tuple(row[0] for row in database.query(_DEPENDENTS_QUERY, args)),
        not_carried=tuple(row[0] for row in database.query(_NOT_CARRIED_QUERY, args)))


def mirror_enabled(database, table_oid: int) -> bool:
    return bool(database.query_value(_MIRROR_ENABLED_QUERY, (table_oid, MIRROR_TRIGGER)))


def key_range(database, table: Tuple[str, str], column: str) -> Tuple[Any, Any, Any]:
    """min(key), max(key) and the server's now()."""
    return tuple(database.query(render.key_range(table, column))[0])


def key_values(database, table: Tuple[str, str], column: str) -> List[str]:
    return [row[0] for row in database.query(render.key_values(table, column))]


def holds_rows(database, table: Tuple[str, str]) -> bool:
    return bool(database.query_value(render.any_row(table)))


def rows_after(database, source: Tuple[str, str], primary_key: Sequence[str], types: Sequence[str],
               after: Optional[Sequence[str]]) -> int:
    return int(database.query_value(render.count_after(source, primary_key, types, after)))


def verification_rows(database, regular: Tuple[str, str], state: TableState,
                      checksum_columns: Sequence[str]) -> List[tuple]:
    """Rows and a checksum per partition of both tables, in one statement and so one snapshot."""
    return database.query(render.verification(regular, state, checksum_columns))
