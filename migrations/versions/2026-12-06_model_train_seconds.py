"""Final models fitted to a time budget: a model records the seconds its epochs may take.

Revision ID: 7d41c0e9a2b5
Revises: 25f7f6474f4f
Create Date: 2026-12-06 16:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7d41c0e9a2b5'
down_revision: Union[str, Sequence[str], None] = '25f7f6474f4f'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('train_seconds', sa.Double(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_column('train_seconds')
