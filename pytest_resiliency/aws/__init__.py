"""AWS sessions, probes and stop conditions; boto3 and moto are imported only when used."""
