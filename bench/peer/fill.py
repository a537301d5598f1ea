"""Fill the peer's database with N API keys; print the value of one (JSON on stdout).

Keys are made by the library's own KeyGenerator (prefix, secret, sha512 hash) and
inserted with Django's ``bulk_create``, so every row is what ``create_key`` would store.
"""

import json
import os
import sys
import time

CHUNK = 5_000
CACHE_KIB = 512 * 1024


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from rest_framework_api_key.crypto import KeyGenerator, concatenate
    from rest_framework_api_key.models import APIKey

    count = int(sys.argv[1])
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    generator = KeyGenerator()
    with connection.cursor() as cursor:  # random keys into big indexes: a big page cache
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    value = None
    for start in range(0, count, CHUNK):
        rows = []
        for index in range(start, min(start + CHUNK, count)):
            key, prefix, hashed = generator.generate()
            if index == 0:
                value = key
            rows.append(
                APIKey(
                    id=concatenate(prefix, hashed),
                    prefix=prefix,
                    hashed_key=hashed,
                    name=f"bench-{index}",
                )
            )
        APIKey.objects.bulk_create(rows, ignore_conflicts=True)
    json.dump(
        {"key": value, "count": count, "seconds": round(time.monotonic() - started, 1)}, sys.stdout
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
