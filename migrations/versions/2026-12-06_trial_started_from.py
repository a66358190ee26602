"""Trials record the trial whose kept weights they started from (a promoted trial of a lengthened search).

Revision ID: 3f7c1b9e4d20
Revises: 8e4b2d6a9c15
Create Date: 2026-12-06 23:59:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3f7c1b9e4d20'
down_revision: Union[str, Sequence[str], None] = '8e4b2d6a9c15'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_from_trial', sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('started_from_trial')
