"""Trials record whether they train one of the search space's hand-designed reference networks (with its recipe).

Revision ID: 8e4b2d6a9c15
Revises: 5c2a9e7d1f83
Create Date: 2026-12-06 22:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '8e4b2d6a9c15'
down_revision: Union[str, Sequence[str], None] = '5c2a9e7d1f83'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference_design', sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('reference_design')
