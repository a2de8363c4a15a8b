"""Juju-side state, typed: the peer relation's databags, the application's secrets, and the
config. The only code that reads and writes them."""
