"""optbot's command-line tools that drive the services (the backtest)."""
