"""SSM Command documents: loading, static validation and a local runner for their shell steps."""
