"""Per-trial stop: trials and attempts may end ``stopped``, and a trial records when a user asked it to stop.

Revision ID: 25f7f6474f4f
Revises: 3b8f6c2d9e14
Create Date: 2026-12-06 09:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '25f7f6474f4f'
down_revision: Union[str, Sequence[str], None] = '3b8f6c2d9e14'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TRIAL_STATUSES = ('pending', 'running', 'succeeded', 'pruned', 'stopped', 'failed', 'canceled')
ATTEMPT_STATUSES = ('running', 'succeeded', 'pruned', 'stopped', 'failed', 'canceled', 'lost')
OLD_TRIAL_STATUSES = ('pending', 'running', 'succeeded', 'pruned', 'failed', 'canceled')
OLD_ATTEMPT_STATUSES = ('running', 'succeeded', 'pruned', 'failed', 'canceled', 'lost')


def _status_check(table: str, statuses: tuple[str, ...]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f'ck_{table}_status'), type_='check')
        batch_op.create_check_constraint(op.f(f'ck_{table}_status'), f"status IN {statuses}")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stop_requested_at', sa.DateTime(timezone=True), nullable=True))
    _status_check('trials', TRIAL_STATUSES)
    _status_check('trial_attempts', ATTEMPT_STATUSES)


def downgrade() -> None:
    """Downgrade schema."""
    # A stopped trial is closest to a pruned one: a partial curve that finished without succeeding.
    op.execute("UPDATE trials SET status = 'pruned' WHERE status = 'stopped'")
    op.execute("UPDATE trial_attempts SET status = 'pruned' WHERE status = 'stopped'")
    _status_check('trial_attempts', OLD_ATTEMPT_STATUSES)
    _status_check('trials', OLD_TRIAL_STATUSES)
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('stop_requested_at')
