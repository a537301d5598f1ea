"""apitokens: a self-hosted API token service compatible with the Panther API Tokens REST API."""

__version__ = "0.1.0"
