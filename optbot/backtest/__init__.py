"""Simulated sessions: the services against the simulator in lockstep, and the report."""
