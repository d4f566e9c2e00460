"""ssc-orchestration."""
