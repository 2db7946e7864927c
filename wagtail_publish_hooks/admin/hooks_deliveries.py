"""Wagtail hooks for the deliveries report, the dashboard panel and a page's deliveries."""
