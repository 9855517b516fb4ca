"""Pure page models: a Snapshot (and a clock) in, plain data for one template out."""
