"""flavors, service profiles, their bindings, and routers' flavor_id (flavors, l3-flavors)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flavors',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=1024), nullable=True),
    sa.Column('service_type', sa.String(length=36), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('service_profiles',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('description', sa.String(length=1024), nullable=True),
    sa.Column('driver', sa.String(length=1024), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('metainfo', sa.String(length=4096), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('flavor_service_profiles',
    sa.Column('flavor_id', sa.String(length=36), nullable=False),
    sa.Column('service_profile_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['flavors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_profile_id'], ['service_profiles.id'], ),
    sa.PrimaryKeyConstraint('flavor_id', 'service_profile_id')
    )
    with op.batch_alter_table('flavor_service_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flavor_service_profiles_service_profile_id'), ['service_profile_id'],
                              unique=False)
    # NOTE: a plain column (no foreign key): adding one to an existing table would make SQLite
    # rebuild ``routers``, which other tables reference; the service locks the flavor instead.
    op.add_column('routers', sa.Column('flavor_id', sa.String(length=36), nullable=True))
    op.create_index('ix_routers_flavor_id', 'routers', ['flavor_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_routers_flavor_id', table_name='routers')
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.drop_column('flavor_id')
    with op.batch_alter_table('flavor_service_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flavor_service_profiles_service_profile_id'))
    op.drop_table('flavor_service_profiles')
    op.drop_table('service_profiles')
    op.drop_table('flavors')
