"""Locustfiles a load run passes to ``locust -f``; each is loaded by locust, never by pytest."""
