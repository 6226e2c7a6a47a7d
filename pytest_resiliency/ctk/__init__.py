"""Chaos Toolkit experiments as pytest items; our faults, probes and load as CTK providers."""
