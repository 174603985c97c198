"""The initial study schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("dataset", sa.String(50), nullable=False),
        sa.Column("data_root", sa.Text(), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("raters_per_item", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("attention_rate", sa.Float(), nullable=False),
        sa.Column("attention_shift_s", sa.Float(), nullable=False),
        sa.Column("media_dir", sa.Text(), nullable=False),
        sa.Column("admin_key_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "method",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("study.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.UniqueConstraint("study_id", "name"),
    )
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("study.id"), nullable=False),
        sa.Column("clip", sa.Text(), nullable=False),
        sa.Column("class_text", sa.Text(), nullable=False),
        sa.Column("is_attention", sa.Boolean(), nullable=False),
        sa.Column("image_path", sa.Text(), nullable=False),
        sa.Column("audio_path", sa.Text(), nullable=False),
    )
    op.create_index("ix_item_study_id", "item", ["study_id"])
    op.create_table(
        "item_video",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("item.id"), nullable=False),
        sa.Column("method_id", sa.Integer(), sa.ForeignKey("method.id"), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.UniqueConstraint("item_id", "method_id"),
    )
    op.create_index("ix_item_video_item_id", "item_video", ["item_id"])
    op.create_table(
        "rater",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("study.id"), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("invited_at", sa.DateTime(), nullable=True),
        sa.Column("consented_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("study_id", "label"),
    )
    op.create_index("ix_rater_study_id", "rater", ["study_id"])
    op.create_table(
        "assignment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rater_id", sa.Integer(), sa.ForeignKey("rater.id"), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("item.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("client_ms", sa.Integer(), nullable=True),
        sa.UniqueConstraint("rater_id", "item_id"),
    )
    op.create_index("ix_assignment_rater_id", "assignment", ["rater_id"])
    op.create_index("ix_assignment_item_id", "assignment", ["item_id"])
    op.create_table(
        "vote",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("assignment_id", sa.Integer(), sa.ForeignKey("assignment.id"), nullable=False),
        sa.Column("question", sa.String(20), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("method_id", sa.Integer(), sa.ForeignKey("method.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("assignment_id", "question"),
    )
    op.create_index("ix_vote_assignment_id", "vote", ["assignment_id"])
    op.create_table(
        "refusal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("study.id"), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_refusal_study_id", "refusal", ["study_id"])


def downgrade() -> None:
    for table in ("refusal", "vote", "assignment", "rater", "item_video", "item", "method"):
        op.drop_table(table)
    op.drop_table("study")
