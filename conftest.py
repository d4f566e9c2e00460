"""Workspace-wide pytest setup: the shared S3 and PostgreSQL fixtures of ssc-common."""

pytest_plugins = ["ssc_common.testing.fixtures"]
