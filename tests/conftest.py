"""Shared pytest configuration: fixtures live in tests/fixtures/ as plugin modules."""

pytest_plugins = [
    "fixtures.standalone",
    "fixtures.cluster",
    "fixtures.servers",
    "fixtures.journal",
    "exchange_sim.pytest_plugin",
    "fixtures.crds",
    "fixtures.operator",
    "fixtures.podrunner",
    "fixtures.devenv",
    "fixtures.runtimes",
]
