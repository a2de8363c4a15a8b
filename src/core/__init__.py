"""The pure decision core: what a unit, and the Juju leader, do next. Imports nothing outside
itself and never ops; every function takes observed state and returns a step."""
