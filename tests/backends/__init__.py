"""Each backend against a loopback server that answers as its service does; purge sets,
receivers."""
