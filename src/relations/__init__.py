"""Adapters to other applications' relations: each module the only reader and writer of its
relation's databags (keys in literals.py)."""
