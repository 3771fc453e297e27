"""The trade generator: a correlated S&P 500 price process and millions of simulated retail users,
published to Kafka (live) or written straight to the S3 archive (batch). See generator/README.md.

Pure core: `market` (prices), `users` (activity and books), `trades` (batches), `clock`, `ids`,
`codec`. I/O shell: `kafka_sink`, `archive` + `archiver` (S3), `live`, `batch`, `cli`.
"""
