"""TrainingJob: its status from the Job and pods, and what the runtime's containers report."""
