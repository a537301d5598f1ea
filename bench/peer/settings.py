"""Django settings of the peer: the documented djangorestframework-api-key setup on SQLite.

Kept minimal on purpose (no middleware, JSON renderer only, no session or basic
authentication classes), which makes each request as cheap as this stack allows: the
comparison favours the peer, not us.
"""

import os

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.peer.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_api_key",
]
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_PEER_DB", "peer.sqlite3"),
        "CONN_MAX_AGE": int(os.environ.get("BENCH_PEER_CONN_MAX_AGE", "0")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework_api_key.permissions.HasAPIKey"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
# Documented option: read the key from X-API-Key, the header our service uses.
API_KEY_CUSTOM_HEADER = "HTTP_X_API_KEY"
