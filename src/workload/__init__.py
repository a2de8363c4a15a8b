"""Adapters to what the charm drives: the container through Pebble, etcdctl and etcdutl in
it, the config file, and the files on the unit's storage. They decide nothing."""
