"""Trials record their balanced accuracy on validation images mirrored and upside down (whether the data set is
mirror-symmetric, whether its images are orientation-free).

Revision ID: 3b8f6c2d9e14
Revises: 7d2e4b91c0a3
Create Date: 2026-12-06 13:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3b8f6c2d9e14'
down_revision: Union[str, Sequence[str], None] = '7d2e4b91c0a3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('val_mirrored_balanced_accuracy', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('val_upside_down_balanced_accuracy', sa.Double(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('val_upside_down_balanced_accuracy')
        batch_op.drop_column('val_mirrored_balanced_accuracy')
