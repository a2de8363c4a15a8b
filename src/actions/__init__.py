"""The operator's actions, one module per family, each registered in `registry` with its
parameters' class, its handler and what it needs (the leader, etcd)."""
