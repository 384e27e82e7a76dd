"""Document numbers without gaps: the next number of a series in a year is taken inside the
transaction that writes the document, so a rolled-back document gives its number back."""

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.db.models import DocumentNumber


def next_number(session: Session, series: str, year: int) -> int:
    """The next number of `series` in `year` (1 for the first), in the caller's transaction.

    One UPDATE ... RETURNING takes it: on PostgreSQL the row lock makes a concurrent document
    wait for this transaction; SQLite has one writer at a time anyway.
    """
    for _ in range(2):
        taken = session.execute(
            update(DocumentNumber)
            .where(DocumentNumber.series == series, DocumentNumber.year == year)
            .values(last=DocumentNumber.last + 1)
            .returning(DocumentNumber.last)
        ).scalar()
        if taken is not None:
            return int(taken)
        try:
            with session.begin_nested():  # the year's first document
                session.add(DocumentNumber(series=series, year=year, last=1))
            return 1
        except IntegrityError:  # another transaction started the year first: take the next
            continue
    raise RuntimeError(f"could not take a {series} number for {year}")


def document_no(series: str, year: int, number: int) -> str:
    """How a document number reads: INV-2026-000042."""
    return f"{series}-{year}-{number:06d}"
