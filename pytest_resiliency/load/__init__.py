"""Load generation with locust, always out of process (locust is never imported here)."""
