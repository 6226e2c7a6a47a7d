"""The ``aws`` fixture and the AWS options."""
