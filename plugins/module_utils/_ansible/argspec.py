# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the argument spec of the shared connection options.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import EPOCH_SCALE

# Each mirrors a documentation fragment one to one (plugins/doc_fragments/connection.py, partition_policy.py,
# locking.py); ansible-test's validate-modules checks that they agree.
CONNECTION_OPTIONS = dict(
    login_user=dict(type="str", default="postgres", aliases=["login"]),
    login_password=dict(type="str", default="", no_log=True),
    login_host=dict(type="str", default="", aliases=["host"]),
    login_unix_socket=dict(type="str", default="", aliases=["unix_socket"]),
    port=dict(type="int", default=5432, aliases=["login_port"]),
    login_db=dict(type="str", default="postgres", aliases=["db", "database"]),
    ssl_mode=dict(
        type="str",
        default="prefer",
        choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"],
    ),
    ca_cert=dict(type="str", aliases=["ssl_rootcert"]),
    ssl_cert=dict(type="path"),
    ssl_key=dict(type="path", no_log=False),
    connect_params=dict(type="dict", default={}),
    session_role=dict(type="str"),
)


# The options of a partition policy, shared by postgres_partition and postgres_partition_convert.
PARTITION_POLICY_OPTIONS = dict(
    interval=dict(type="str"),
    epoch=dict(type="str", choices=list(EPOCH_SCALE)),
    interval_anchor=dict(type="raw"),
    premake=dict(type="int", default=12),
    backfill=dict(type="int", default=0),
    reference_time=dict(type="raw"),
    timezone=dict(type="str", default="UTC"),
    name_template=dict(type="str"),
    default_partition=dict(type="bool", default=False),
    list_partitions=dict(type="dict"),
    hash_modulus=dict(type="int"),
    tablespace=dict(type="str"),
    template_table=dict(type="str"),
)

# How DDL waits for its locks, and (RUN_LOCK_OPTIONS) for another run on the same table.
LOCKING_OPTIONS = dict(
    lock_timeout=dict(type="str", default="3s"),
    retries=dict(type="int", default=5),
)
RUN_LOCK_OPTIONS = dict(
    run_lock_wait=dict(type="int", default=60),
)


def argument_spec(**module_options: dict) -> dict:
    """The connection options plus a module's own options."""
    spec = {name: dict(option) for name, option in CONNECTION_OPTIONS.items()}
    spec.update(module_options)
    return spec


def locking_settings(params: dict) -> dict:
    """The locking options a module was given, as keyword arguments of its job."""
    return {name: params[name] for name in list(LOCKING_OPTIONS) + list(RUN_LOCK_OPTIONS) if name in params}
