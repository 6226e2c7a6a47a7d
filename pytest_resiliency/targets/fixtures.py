"""Fixtures and options for local targets and faults (``service``, ``proxy``)."""
