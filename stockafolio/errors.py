"""One root exception, with a subclass per area, so entry points can turn any of them into one
clear message and a non-zero exit instead of a traceback."""


class StockafolioError(Exception):
    """Root of every error Stockafolio raises on purpose."""


class ConfigError(StockafolioError):
    """A setting, flag or rendered config file is missing or wrong."""


class ServiceUnavailable(StockafolioError):
    """A service (Kafka, Cassandra, HDFS, S3) cannot be reached."""

    def __init__(self, service: str, detail: str, hint: str = "start it with: bin/stockafolio run"):
        super().__init__(f"{service} is not reachable: {detail}; {hint}")
        self.service = service


class SchemaError(StockafolioError):
    """A Cassandra migration is malformed or was changed after it was applied."""
