"""each warehouse's orders per day as a counter kept with the holds: a reservation counted the
day's reservations (distinct orders per warehouse), a cost that grew with every order placed
that day, inside the write lock

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warehouse_loads",
        sa.Column("warehouse", sa.String(8), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.CheckConstraint("orders >= 0", name="orders_not_negative"),
    )
    # The load of every day so far, from the reservations themselves (days are UTC).
    day = (
        "date(created_at)"
        if op.get_bind().dialect.name == "sqlite"
        else "(created_at AT TIME ZONE 'UTC')::date"
    )
    op.execute(
        f"INSERT INTO warehouse_loads (warehouse, day, orders) "
        f"SELECT warehouse, {day}, COUNT(DISTINCT order_id) FROM stock_reservations "
        f"WHERE state != 'RELEASED' GROUP BY warehouse, {day}"
    )


def downgrade() -> None:
    op.drop_table("warehouse_loads")
