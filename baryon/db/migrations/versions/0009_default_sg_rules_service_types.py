"""default security group rule templates (security-groups-default-rules), subnet service types

The template starts with the rules every group got before (Neutron's legacy defaults, as its own
migration writes them): egress over IPv4 and IPv6 for every group, and ingress from the group
itself (``remote_group_id`` "PARENT") for each project's default group.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

import datetime as dt
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

EGRESS = 'Legacy default SG rule for egress traffic'
INGRESS = 'Legacy default SG rule for ingress traffic'


def _legacy_rules() -> list[dict]:
    """Neutron's hard-coded defaults as template rows; ``default_key``/``non_default_key`` as
    ``service.sgtemplates.keys`` computes them."""
    moment = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = []
    for ethertype in ('IPv4', 'IPv6'):
        for direction, remote, description, non_default in (
                ('egress', None, EGRESS, True), ('ingress', 'PARENT', INGRESS, False)):
            key = f"{direction}|{ethertype}||||{remote or ''}||"
            rows.append({
                'id': str(uuid.uuid4()), 'direction': direction, 'ethertype': ethertype, 'protocol': None,
                'port_range_min': None, 'port_range_max': None, 'remote_ip_prefix': None,
                'remote_group_id': remote, 'remote_address_group_id': None, 'description': description,
                'used_in_default_sg': True, 'used_in_non_default_sg': non_default,
                'default_key': key, 'non_default_key': key if non_default else None,
                'created_at': moment, 'updated_at': moment,
            })
    return rows


def upgrade() -> None:
    table = op.create_table('default_security_group_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('ethertype', sa.String(length=8), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('remote_group_id', sa.String(length=36), nullable=True),
    sa.Column('remote_address_group_id', sa.String(length=36), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('used_in_default_sg', sa.Boolean(), nullable=False),
    sa.Column('used_in_non_default_sg', sa.Boolean(), nullable=False),
    sa.Column('default_key', sa.String(length=255), nullable=True),
    sa.Column('non_default_key', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('default_key', name='uniq_default_sg_rules0default_key'),
    sa.UniqueConstraint('non_default_key', name='uniq_default_sg_rules0non_default_key'),
    )
    op.bulk_insert(table, _legacy_rules())

    op.create_table('subnet_service_types',
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('service_type', sa.String(length=255), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['subnet_id'], ['subnets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnet_id', 'service_type')
    )
    with op.batch_alter_table('subnet_service_types', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnet_service_types_service_type'), ['service_type'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subnet_service_types', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnet_service_types_service_type'))
    op.drop_table('subnet_service_types')
    op.drop_table('default_security_group_rules')
