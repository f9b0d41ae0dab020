"""`make bench`: the gateway's figures over the sandbox, each next to its reference and goal.

Not installed with the package and not run in CI; docs/performance.md says how to run it
and how to read its table. It imports core, sandbox and gateway, never the other way round.
"""
