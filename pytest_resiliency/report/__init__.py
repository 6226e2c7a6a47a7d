"""Reports read only the plain-dict payload that travels on each test report."""
