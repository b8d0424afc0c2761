"""index of the change log by resource; the etag of the view an agent realised

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_changes_resource_id_seq', 'changes', ['resource_id', 'seq'])
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('realised_etag', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('realised_etag')
    op.drop_index('ix_changes_resource_id_seq', table_name='changes')
