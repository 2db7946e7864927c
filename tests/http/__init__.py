"""The HTTP transport: address policy and pinning, hostile responses."""
