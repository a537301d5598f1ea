"""The token rules: plain Python, no web framework, no database."""
