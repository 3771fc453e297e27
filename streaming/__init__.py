"""The streaming job: trades from Kafka into holdings, P&L and risk in Cassandra, exactly once."""
