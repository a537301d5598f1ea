"""The ``apitokens`` command line."""
