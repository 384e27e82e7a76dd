"""The `orderflow` commands, one module per kind of user."""
