"""Pure order-management domain: contracts, statuses and business rules (no I/O)."""
