"""The Spark Kafka options' JAAS line, read back by the Kafka Java client's own parser (the one the
cluster's streaming job runs), so a password with quotes or backslashes arrives intact."""

from __future__ import annotations

from stockafolio.settings import KafkaAuth, spark_kafka_options


def test_the_java_client_reads_back_user_and_password(spark) -> None:
    password = 'se"cr\\et with spaces;'
    line = spark_kafka_options(KafkaAuth("stockafolio_stream", password))["kafka.sasl.jaas.config"]
    config = spark._jvm.org.apache.kafka.common.security.JaasConfig("KafkaClient", line)
    (entry,) = config.getAppConfigurationEntry("KafkaClient")
    assert entry.getLoginModuleName() == "org.apache.kafka.common.security.scram.ScramLoginModule"
    assert entry.getOptions().get("username") == "stockafolio_stream"
    assert entry.getOptions().get("password") == password
