"""The Wagtail admin: deliveries, destinations, permissions, the dashboard, in a browser too."""
