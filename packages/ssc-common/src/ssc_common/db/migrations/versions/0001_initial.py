"""Initial schema: runs, tasks, products, provenance_edges.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

STATUS_CHECK = "status IN ('running', 'succeeded', 'failed')"
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("software_versions", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("step", sa.String(128), nullable=False),
        sa.Column("partition", sa.String(128), nullable=True),
        sa.Column("inputs_digest", sa.String(64), nullable=False),
        sa.Column("parameters_digest", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_tasks_status")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_tasks_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index(op.f("ix_tasks_run_id"), "tasks", ["run_id"])
    op.create_index(
        "ix_tasks_lookup", "tasks", ["step", "inputs_digest", "parameters_digest", "status"]
    )
    op.create_table(
        "products",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("product_type", sa.String(64), nullable=False),
        sa.Column("schema_tag", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_products_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("uri", name=op.f("uq_products_uri")),
    )
    op.create_index(op.f("ix_products_product_type"), "products", ["product_type"])
    op.create_index(op.f("ix_products_task_id"), "products", ["task_id"])
    op.create_table(
        "provenance_edges",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("output_product_id", sa.BigInteger(), nullable=False),
        sa.Column("input_uri", sa.String(2048), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("input_product_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["output_product_id"],
            ["products.id"],
            name=op.f("fk_provenance_edges_output_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["input_product_id"],
            ["products.id"],
            name=op.f("fk_provenance_edges_input_product_id_products"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provenance_edges")),
        sa.UniqueConstraint(
            "output_product_id",
            "input_uri",
            name=op.f("uq_provenance_edges_output_product_id_input_uri"),
        ),
    )
    op.create_index(
        op.f("ix_provenance_edges_input_product_id"), "provenance_edges", ["input_product_id"]
    )
    op.create_index(op.f("ix_provenance_edges_input_uri"), "provenance_edges", ["input_uri"])


def downgrade() -> None:
    op.drop_table("provenance_edges")
    op.drop_table("products")
    op.drop_table("tasks")
    op.drop_table("runs")
