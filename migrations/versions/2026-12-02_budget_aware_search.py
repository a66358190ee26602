"""Budget-aware search: the objective as asked, screened candidates, predicted and measured epoch times, balanced
accuracy of trials and epochs, the checkpoint an attempt resumed from, and the final model's announced retraining
time.

Revision ID: 7d2e4b91c0a3
Revises: 89c793185dbe
Create Date: 2026-12-02 07:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7d2e4b91c0a3'
down_revision: Union[str, Sequence[str], None] = '89c793185dbe'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('objective', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('screened', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('screened_points', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('val_balanced_accuracy', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('val_recall', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('predicted_epoch_s', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('measured_epoch_s', sa.Double(), nullable=True))
    with op.batch_alter_table('trial_epochs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('val_balanced_accuracy', sa.Double(), nullable=True))
    with op.batch_alter_table('trial_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resumed_from_epoch', sa.Integer(), nullable=True))
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimated_seconds', sa.Double(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_column('estimated_seconds')
    with op.batch_alter_table('trial_attempts', schema=None) as batch_op:
        batch_op.drop_column('resumed_from_epoch')
    with op.batch_alter_table('trial_epochs', schema=None) as batch_op:
        batch_op.drop_column('val_balanced_accuracy')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('measured_epoch_s')
        batch_op.drop_column('predicted_epoch_s')
        batch_op.drop_column('val_recall')
        batch_op.drop_column('val_balanced_accuracy')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('screened_points')
        batch_op.drop_column('screened')
        batch_op.drop_column('objective')
