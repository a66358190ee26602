"""Trials record the epochs they train for in full (a time-bound search lengthens its trials while none has learned).

Revision ID: 5c2a9e7d1f83
Revises: 3b7f9c1e5a62
Create Date: 2026-12-06 21:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5c2a9e7d1f83'
down_revision: Union[str, Sequence[str], None] = '3b7f9c1e5a62'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned_epochs', sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('planned_epochs')
