"""Perennial Studio: a read-mostly web dashboard over the cluster's Perennial resources.

Fed by watches into an in-memory view (`store`), rendered server-side (`app`), with the few
writes a user could make with kubectl behind ``--allow-actions`` (`actions`).
"""
