"""Client side: the `orderflow` command that starts orders and sends them decisions."""
