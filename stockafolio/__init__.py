"""Code that several Stockafolio components share: settings, errors, the Cassandra schema runner.

Components (generator, streaming, batch, webapp) import from here and never from each other.
"""
