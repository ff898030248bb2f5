"""The Redis users a primary/replica pair behind Sentinel needs, besides the services'.

A replica logs in to its primary to replicate, and each sentinel logs in to every
data node to watch it and, on failover, to promote a replica (``REPLICAOF``,
``CONFIG REWRITE``, ``CLIENT KILL``). Both get only those commands (the lists of
the Redis Sentinel and replication docs), and their lines join the ACL file of
``shared/acl.py`` on every data node (a replica may become the primary).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.acl import password_hash

REPLICATION_USER = "replication"
SENTINEL_USER = "sentinel"
HA_USERS = (REPLICATION_USER, SENTINEL_USER)

_COMMANDS = {
    REPLICATION_USER: "resetchannels -@all +psync +replconf +ping",
    SENTINEL_USER: (
        "allchannels -@all +multi +slaveof +replicaof +ping +exec +subscribe +config|rewrite "
        "+role +publish +info +client|setname +client|kill +script|kill"
    ),
}


def render_ha_acl(passwords: Mapping[str, str]) -> str:
    """ACL lines of the replication and sentinel users (hashes only), to append."""
    missing = [name for name in HA_USERS if not passwords.get(name)]
    if missing:
        raise ValueError(f"no password for Redis users: {', '.join(missing)}")
    lines = [
        f"user {name} on {password_hash(passwords[name])} resetkeys {_COMMANDS[name]}"
        for name in HA_USERS
    ]
    return "\n".join(lines) + "\n"
