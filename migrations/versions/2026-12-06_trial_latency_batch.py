"""Trials record their per-image latency at the objective's ``latency_batch`` next to batch 1's (``latency_ms``).

Revision ID: 3b7f9c1e5a62
Revises: 6e1d3a8f2c47
Create Date: 2026-12-06 17:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3b7f9c1e5a62'
down_revision: Union[str, Sequence[str], None] = '6e1d3a8f2c47'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latency_batch_ms', sa.Double(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('latency_batch_ms')
