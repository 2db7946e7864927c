"""Wagtail hooks for the destinations screens."""
