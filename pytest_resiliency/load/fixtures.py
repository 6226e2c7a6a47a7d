"""The ``load`` fixture."""
