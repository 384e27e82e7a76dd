"""money as finance sees it: customers' e-mail and VAT id, products' tax class, invoices and
credit notes with net / tax / shipping and their document (refunds too), gapless
document numbers, an order's gross estimate (credit exposure)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 2)


def upgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        table.add_column(sa.Column("vat_id", sa.String(length=20), nullable=True))
    with op.batch_alter_table("products") as table:
        table.add_column(
            sa.Column("tax_class", sa.String(length=16), nullable=False, server_default="standard")
        )
    with op.batch_alter_table("invoices") as table:
        for name in ("net", "tax", "shipping"):
            table.add_column(sa.Column(name, MONEY, nullable=True))
        table.add_column(sa.Column("document", sa.JSON(), nullable=True))
    with op.batch_alter_table("credit_notes") as table:
        for name in ("net", "tax", "restocking_fee"):
            table.add_column(sa.Column(name, MONEY, nullable=True))
        table.add_column(sa.Column("document", sa.JSON(), nullable=True))
    with op.batch_alter_table("refunds") as table:
        table.add_column(sa.Column("document", sa.JSON(), nullable=True))
    with op.batch_alter_table("orders") as table:
        table.add_column(sa.Column("gross_estimate", MONEY, nullable=True))
    op.create_table(
        "document_numbers",
        sa.Column("series", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", "year"),
    )


def downgrade() -> None:
    op.drop_table("document_numbers")
    with op.batch_alter_table("orders") as table:
        table.drop_column("gross_estimate")
    with op.batch_alter_table("refunds") as table:
        table.drop_column("document")
    with op.batch_alter_table("credit_notes") as table:
        for name in ("document", "restocking_fee", "tax", "net"):
            table.drop_column(name)
    with op.batch_alter_table("invoices") as table:
        for name in ("document", "shipping", "tax", "net"):
            table.drop_column(name)
    with op.batch_alter_table("products") as table:
        table.drop_column("tax_class")
    with op.batch_alter_table("customers") as table:
        table.drop_column("vat_id")
        table.drop_column("email")
