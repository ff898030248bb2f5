"""Operator tooling: the ``optbot`` command, its supervisor, the service registry.

The top layer: it may start and steer the services; ``shared`` (the library) and the
services never import it.
"""
