"""Warm start: an experiment keeps the snapshot of the source trials that seed its strategy.

Revision ID: 9a4c2e7b5d18
Revises: 7d41c0e9a2b5
Create Date: 2026-12-06 17:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '9a4c2e7b5d18'
down_revision: Union[str, Sequence[str], None] = '7d41c0e9a2b5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warm_start', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('warm_start')
