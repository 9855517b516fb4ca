"""ComputePool: which pods want the pool, how many nodes to add or remove, and its status."""
