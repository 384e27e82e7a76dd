"""The domain database: SQLAlchemy models, engine, migrations."""
