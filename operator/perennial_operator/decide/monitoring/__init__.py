"""What the serving pods' Prometheus samples say: drift (PSI) and the live quality metric."""
