"""credit notes: refunds on account terms (Net-30) credit the invoice instead of paying out

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_notes",
        sa.Column("credit_note_no", sa.String(length=40), nullable=False),
        sa.Column(
            "refund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("invoice_no", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name="credit_note_positive"),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"]),
        sa.ForeignKeyConstraint(["invoice_no"], ["invoices.invoice_no"]),
        sa.PrimaryKeyConstraint("credit_note_no"),
        sa.UniqueConstraint("refund_id"),
    )
    op.create_index("ix_credit_notes_invoice_no", "credit_notes", ["invoice_no"])


def downgrade() -> None:
    op.drop_index("ix_credit_notes_invoice_no", table_name="credit_notes")
    op.drop_table("credit_notes")
