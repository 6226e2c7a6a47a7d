"""Collection of Chaos Toolkit experiment files (``*.experiment.json``/``.yaml``) as pytest items."""
