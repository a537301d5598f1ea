"""Use cases: what the API, the command line and the proxy check can do with tokens."""
