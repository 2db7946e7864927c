"""The delivery worker: claims and leases, retries, batching, crash safety, upkeep, operational
events."""
