"""Trials record the 90th percentile of their onnxruntime latency runs next to the median (``latency_ms``).

Revision ID: 6e1d3a8f2c47
Revises: 9a4c2e7b5d18
Create Date: 2026-12-06 17:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '6e1d3a8f2c47'
down_revision: Union[str, Sequence[str], None] = '9a4c2e7b5d18'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latency_p90_ms', sa.Double(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('latency_p90_ms')
