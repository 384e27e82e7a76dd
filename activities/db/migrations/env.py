"""Alembic environment: runs migrations against the URL set by activities.db.engine."""

from alembic import context

from activities.db.engine import make_engine
from activities.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set (use activities.db.engine.alembic_config)"

engine = make_engine(url, pool_size=1)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
