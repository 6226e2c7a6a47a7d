"""Repository-wide pytest configuration.

The plugin itself is loaded through its ``pytest11`` entry point (``pip install -e .``),
exactly as users get it; nothing here re-registers it.
"""
