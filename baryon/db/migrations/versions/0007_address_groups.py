"""address groups, their addresses; security group rules indexed by their remote address group

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('address_groups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('address_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_groups_project_id'), ['project_id'], unique=False)

    op.create_table('address_associations',
    sa.Column('address_group_id', sa.String(length=36), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['address_group_id'], ['address_groups.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('address_group_id', 'address')
    )
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_group_rules_remote_address_group_id'),
                              ['remote_address_group_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_group_rules_remote_address_group_id'))
    op.drop_table('address_associations')
    with op.batch_alter_table('address_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_groups_project_id'))
    op.drop_table('address_groups')
