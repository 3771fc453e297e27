"""The nightly batch: the S3 trade archive into HDFS, firm-wide views, the reconciliation of the
stream against the archive and the historical risk, as Spark jobs (see batch/README.md)."""
