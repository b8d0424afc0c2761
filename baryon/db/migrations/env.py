"""Alembic environment: run by ``baryon.db.migrate``, never through an alembic.ini."""

from alembic import context

from baryon.db.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
