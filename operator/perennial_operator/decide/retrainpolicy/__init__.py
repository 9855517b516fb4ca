"""RetrainPolicy: which trigger fires, the newData probe, the promotion gate, the next action."""
