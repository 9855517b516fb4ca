"""InferenceService: which version to serve, how to roll it out (Rolling or Canary steps,
analysis, rollback), the route's weights, and the status that keeps the rollout's state."""
