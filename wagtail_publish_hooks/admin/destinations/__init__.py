"""Destinations in the admin: those of the settings (read-only, with their health) and those
managed in the admin (created, edited, deleted), and the actions on both."""
