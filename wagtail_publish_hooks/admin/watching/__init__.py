"""Watching: the editor's "Watch…" form for pages and snippets, the "Publishing notifications"
account settings panel, a page's watchers and the administrators' subscriptions screens."""
