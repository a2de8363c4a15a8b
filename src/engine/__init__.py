"""Carrying the core's steps out: observing, driving the member, the reconcile loop, leaving,
restoring. Imperative; it decides nothing."""
