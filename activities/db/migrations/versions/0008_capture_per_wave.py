"""capture per wave: an order may have several invoices (one per capture, numbered by
`capture_no`), and a card authorisation records until when the gateway honours it

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Migration 0001 left the order_id unique constraint unnamed: PostgreSQL calls it
# invoices_order_id_key; on SQLite it is reflected and named by this convention.
NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _order_id_unique() -> str:
    return (
        "invoices_order_id_key"
        if op.get_bind().dialect.name == "postgresql"
        else ("uq_invoices_order_id")
    )


def upgrade() -> None:
    with op.batch_alter_table("invoices", naming_convention=NAMES) as table:
        table.drop_constraint(_order_id_unique(), type_="unique")
        table.add_column(sa.Column("capture_no", sa.Integer(), nullable=False, server_default="1"))
        table.create_unique_constraint("uq_invoices_order_capture", ["order_id", "capture_no"])
    with op.batch_alter_table("payments") as table:
        table.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as table:
        table.drop_column("valid_until")
    with op.batch_alter_table("invoices", naming_convention=NAMES) as table:
        table.drop_constraint("uq_invoices_order_capture", type_="unique")
        table.drop_column("capture_no")
        table.create_unique_constraint(_order_id_unique(), ["order_id"])
