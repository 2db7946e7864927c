"""The Wagtail admin: the deliveries report, destinations, the dashboard panel and page history."""
