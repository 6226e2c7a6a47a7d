"""The serverless runner: a Lambda handler that runs a resiliency suite stored in S3 (see docs/serverless.md)."""
