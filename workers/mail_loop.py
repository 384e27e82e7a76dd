"""The worker's mail loop: sends the e-mail outbox over SMTP while the worker runs."""

import asyncio
import contextlib
import logging
import smtplib
from collections.abc import AsyncIterator

from sqlalchemy import Engine

from activities.mail import MailConfig, Mailer, deliver_pending
from workers.settings import Settings

log = logging.getLogger(__name__)


def mail_config(settings: Settings) -> MailConfig:
    """What e-mail needs from the settings (the secret is made once under `home` if unset)."""
    return MailConfig(
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_security=settings.smtp_security,
        smtp_user=settings.smtp_user,
        smtp_password=settings.smtp_password,
        mail_from=settings.mail_from,
        operations_email=settings.operations_email,
        inbox_url=settings.inbox_url,
        link_valid_for=settings.link_valid_for,
        secret=settings.signing_secret() if settings.smtp_host else b"",
        claim=settings.mail_claim,
    )


async def _deliver_forever(engine: Engine, config: MailConfig, interval: float) -> None:
    mailer = Mailer(config)
    failing = False
    while True:
        try:
            sent = await asyncio.to_thread(deliver_pending, engine, config, mailer)
            if failing:
                log.info("e-mail goes out again via %s:%s", config.smtp_host, config.smtp_port)
            failing = False
        except (OSError, smtplib.SMTPException) as error:
            if not failing:  # say it once per outage, not every second
                log.warning("cannot send e-mail via %s: %s", config.smtp_host, error)
            failing, sent = True, 0
        except Exception:  # the database, say: the loop outlives it as it outlives SMTP's
            if not failing:
                log.exception("cannot send e-mail (trying again)")
            failing, sent = True, 0
        if not sent:
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def mail_delivery(
    settings: Settings, engine: Engine, interval: float = 1.0
) -> AsyncIterator[None]:
    """Deliver e-mail while inside (nothing when no SMTP host is configured)."""
    if not settings.smtp_host:
        yield
        return
    task = asyncio.create_task(_deliver_forever(engine, mail_config(settings), interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
