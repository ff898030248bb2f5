"""optbot: the command line and the tools around the services (backtests)."""
