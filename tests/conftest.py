"""Shared pytest configuration: fixtures live in tests/fixtures/ as plugin modules."""

pytest_plugins = [
    "fixtures.cluster",
    "fixtures.servers",
    "fixtures.journal",
    "fixtures.simulator",
    "fixtures.crds",
    "fixtures.operator",
    "fixtures.podrunner",
    "fixtures.devenv",
    "fixtures.runtimes",
]
