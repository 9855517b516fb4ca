"""The local runtime: runs the pods of Perennial's runtime image as local processes.

See docs/local-runtime.md.
"""
