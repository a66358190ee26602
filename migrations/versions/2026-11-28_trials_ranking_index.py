"""A covering index for leaderboards: rank order, leader and Pareto points from the index alone.

Revision ID: 5c1f0a9d2b7e
Revises: eeecced45f36
Create Date: 2026-11-28 07:12:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5c1f0a9d2b7e'
down_revision: Union[str, Sequence[str], None] = 'eeecced45f36'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.create_index('ix_trials_ranking', ['experiment_id', 'status', 'feasible', 'val_accuracy',
                                                    'params', 'number', 'latency_ms', 'finished_at', 'id'],
                              unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_index('ix_trials_ranking')
