"""notifier: turns what needs a human into messages on the trader's own channels."""
