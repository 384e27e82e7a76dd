"""an index on the reservations of a day: every reservation reads each warehouse's load
today (distinct orders holding stock there), which scanned every reservation ever made

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_stock_reservations_day",
        "stock_reservations",
        ["created_at", "state", "warehouse", "order_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_stock_reservations_day", table_name="stock_reservations")
