# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the argument spec of the shared connection options.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# Mirrors plugins/doc_fragments/connection.py one to one; ansible-test's validate-modules checks they agree.
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


def argument_spec(**module_options):
    """The connection options plus a module's own options."""
    spec = {name: dict(option) for name, option in CONNECTION_OPTIONS.items()}
    spec.update(module_options)
    return spec
