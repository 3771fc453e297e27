"""The local stack manager: provisions services with the Ansible roles, starts them in order,
checks their health, stops them, and runs the test suite. Entry point: bin/stockafolio."""
