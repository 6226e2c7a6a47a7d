"""Locustfiles the controller passes to ``locust -f``; each is loaded by locust, never by pytest."""
