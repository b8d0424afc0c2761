"""rbac policies, with the entries the existing shared and external objects imply

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

import uuid

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rbac_policies',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=255), nullable=False),
    sa.Column('target_project', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('object_type', 'object_id', 'action', 'target_project',
                        name='uniq_rbac_policies0object0action0target')
    )
    with op.batch_alter_table('rbac_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rbac_policies_object_id'), ['object_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rbac_policies_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rbac_policies_target_project'), ['target_project'], unique=False)

    # The wildcard entries that the objects' shared / router:external flags stand for.
    bind = op.get_bind()
    policies = sa.table('rbac_policies', *(sa.column(c) for c in (
        'id', 'project_id', 'object_type', 'object_id', 'action', 'target_project')))
    rows = []
    for table, object_type, flag, action in (
            ('networks', 'network', 'shared', 'access_as_shared'),
            ('networks', 'network', 'router_external', 'access_as_external'),
            ('subnetpools', 'subnetpool', 'shared', 'access_as_shared'),
            ('address_scopes', 'address_scope', 'shared', 'access_as_shared')):
        t = sa.table(table, sa.column('id'), sa.column('project_id'), sa.column(flag))
        for object_id, project_id in bind.execute(sa.select(t.c.id, t.c.project_id).where(t.c[flag].is_(True))):
            rows.append({'id': str(uuid.uuid4()), 'project_id': project_id, 'object_type': object_type,
                         'object_id': object_id, 'action': action, 'target_project': '*'})
    if rows:
        op.bulk_insert(policies, rows)


def downgrade() -> None:
    with op.batch_alter_table('rbac_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rbac_policies_target_project'))
        batch_op.drop_index(batch_op.f('ix_rbac_policies_project_id'))
        batch_op.drop_index(batch_op.f('ix_rbac_policies_object_id'))
    op.drop_table('rbac_policies')
