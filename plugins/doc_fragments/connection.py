# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The names, aliases and defaults match community.postgresql so inventories carry over unchanged.
    DOCUMENTATION = r"""
options:
  login_user:
    description:
      - The role to connect as.
    type: str
    default: postgres
    aliases: [login]
  login_password:
    description:
      - The password of O(login_user). Prefer a password file or peer authentication in production.
    type: str
    default: ''
  login_host:
    description:
      - Host name or address of the server. Empty means the unix socket.
    type: str
    default: ''
    aliases: [host]
  login_unix_socket:
    description:
      - Directory holding the server's unix socket.
    type: str
    default: ''
    aliases: [unix_socket]
  port:
    description:
      - Server port.
    type: int
    default: 5432
    aliases: [login_port]
  login_db:
    description:
      - Database to connect to.
    type: str
    default: postgres
    aliases: [db, database]
  ssl_mode:
    description:
      - How SSL is negotiated with the server, as in libpq's C(sslmode).
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - File with the certificate authorities that may have signed the server certificate.
    type: str
    aliases: [ssl_rootcert]
  ssl_cert:
    description:
      - Client certificate file.
    type: path
  ssl_key:
    description:
      - Client private key file.
    type: path
  connect_params:
    description:
      - Further libpq connection parameters, for example C(connect_timeout) or C(application_name).
    type: dict
    default: {}
  session_role:
    description:
      - Role to switch to with C(SET ROLE) after connecting; the work runs with its privileges.
    type: str
requirements:
  - psycopg2 >= 2.8 or psycopg >= 3.1 on the managed host
"""
