"""Building the deployables' parts from Settings: storage, the sink loader, the API server, the lag monitor."""
