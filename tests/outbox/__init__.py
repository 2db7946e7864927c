"""Recording events and deliveries: the pipeline, routing and coalescing."""
