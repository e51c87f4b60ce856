"""The simulator's own tests: fixtures from its pytest plugin, nothing from the product."""

pytest_plugins = ["exchange_sim.pytest_plugin"]
