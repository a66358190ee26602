"""Trials record whether they trained under bf16 autocast (a CPU chooses it per network by a timed probe).

Revision ID: 6d1e4a8c2b97
Revises: 3f7c1b9e4d20
Create Date: 2026-12-07 23:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '6d1e4a8c2b97'
down_revision: Union[str, Sequence[str], None] = '3f7c1b9e4d20'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bf16', sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('bf16')
