"""perennial-train: check the data, train a built-in algorithm or AutoML, write a safe model.

Public surface: ``cli.main`` (the console script), ``algorithms.ALGORITHMS`` (task → names,
read by the operator's CRD tests), ``persist.TRUSTED`` / ``persist.load_model`` (read by the
server) and ``profile.bin_index`` (the drift binning rule the server must share).
"""
