"""``python -m optbot``: the same as the ``optbot`` command."""

from optbot.cli import main

main()
