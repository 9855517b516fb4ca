"""The API surface every layer shares: group, kinds, labels, condition types and reasons."""
