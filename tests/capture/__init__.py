"""Capture: publishing paths, custom events and reconcile become events; a publish never breaks."""
