"""The peer: a minimal Django REST framework view guarded by djangorestframework-api-key.

It runs in its own virtualenv (``bench/.peer-venv``), made by ``bench.tools``.
"""
