"""Targets: what a fault acts on (supervised local services, AWS resources)."""
