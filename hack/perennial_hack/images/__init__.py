"""Container images of Perennial, built here from the repository's Dockerfiles."""
