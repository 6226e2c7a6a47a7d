"""The blueprint's Chaos Toolkit experiments, run unchanged as pytest items against moto by default."""
