"""InferenceService use cases: the rollout sync (sync.py), drift measurement (drift.py), and
the pieces they share: scraping serving pods (pods.py), steering an HTTPRoute (traffic.py)."""
