"""The blueprint's AWS experiments, against the embedded moto server by default."""
