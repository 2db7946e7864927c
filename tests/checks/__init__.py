"""The registered system checks."""
