"""Tasks may end ``rejected``: a step refused its input (an unusable epoch) with a reason.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

OLD = "status IN ('running', 'succeeded', 'failed')"
NEW = "status IN ('running', 'succeeded', 'failed', 'rejected')"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(op.f("ck_tasks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_tasks_status"), NEW)


def downgrade() -> None:
    op.execute("UPDATE tasks SET status = 'failed' WHERE status = 'rejected'")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(op.f("ck_tasks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_tasks_status"), OLD)
