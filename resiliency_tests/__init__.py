"""The example resiliency suite: the demo workload and the experiments that run out of the box."""
