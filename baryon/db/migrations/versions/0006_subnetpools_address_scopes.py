"""subnet pools, their prefixes, and address scopes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _standard() -> list[sa.Column]:
    return [
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('revision_number', sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table('address_scopes',
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    *_standard(),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_scopes_project_id'), ['project_id'], unique=False)

    op.create_table('subnetpools',
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.Column('address_scope_id', sa.String(length=36), nullable=True),
    *_standard(),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpools_address_scope_id'), ['address_scope_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subnetpools_project_id'), ['project_id'], unique=False)

    op.create_table('subnetpool_prefixes',
    sa.Column('subnetpool_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['subnetpool_id'], ['subnetpools.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnetpool_id', 'position')
    )


def downgrade() -> None:
    op.drop_table('subnetpool_prefixes')
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnetpools_project_id'))
        batch_op.drop_index(batch_op.f('ix_subnetpools_address_scope_id'))
    op.drop_table('subnetpools')
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_scopes_project_id'))
    op.drop_table('address_scopes')
