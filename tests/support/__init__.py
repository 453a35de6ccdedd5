"""Test harnesses (not tests): real-server fixtures and helpers shared by tests/ and bench/."""
