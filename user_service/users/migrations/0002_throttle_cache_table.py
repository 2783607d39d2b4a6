"""The table of the database cache (settings.CACHES without REDIS_URL): throttle counters shared by every process.

Created whatever CACHES says when migrating, so switching from Redis to no Redis later needs no extra step.
"""

from django.core.management import call_command
from django.db import migrations

CACHE_TABLE = "lms_cache"  # common.django_settings.CACHE_TABLE, frozen here as migrations are


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", CACHE_TABLE, database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("users", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
