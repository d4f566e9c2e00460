"""Helpers for tests of the SSC packages: local servers, fault injection (never in production)."""
