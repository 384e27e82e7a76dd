"""`orderflow reconcile`: orderflow's invoices, credit notes, refunds and cancellations
against the postings the ERP acknowledged (GET <ORDERFLOW_ERP_URL>/postings)."""

from collections import Counter
from typing import Any

from activities.db.engine import make_engine
from activities.erp import ErpUnavailable, WebhookErp
from activities.erp_outbox import documents
from domain.erp import reconcile
from starter.orders import UserError
from workers.settings import Settings


def reconcile_with_erp(settings: Settings) -> dict[str, Any]:
    """Every difference between the books and the ERP (`ok`: none)."""
    if not settings.erp_url:
        raise UserError("no ERP configured: set ORDERFLOW_ERP_URL")
    erp = WebhookErp(
        settings.erp_url, settings.erp_signing_secret(), settings.erp_timeout.total_seconds()
    )
    try:
        acknowledged = erp.acknowledged()
    except ErpUnavailable as error:
        raise UserError(f"cannot read the ERP's postings: {error}") from None
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        ours = documents(engine)
    finally:
        engine.dispose()
    differences = reconcile(ours, acknowledged)
    return {
        "ok": not differences,
        "erp": erp.url,
        "documents": dict(sorted(Counter(d.kind for d in ours).items())),
        "acknowledged": len(acknowledged),
        "differences": [d.model_dump(mode="json") for d in differences],
    }
