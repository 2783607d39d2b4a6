# The lists' orderings end with the id (cursor pages, common.pagination): one index range per page.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_throttle_cache_table"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="user", name="users_role_approval_idx"),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["-created_at", "-id"], name="users_newest"),
        ),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["role", "-created_at", "-id"], name="users_role_newest"),
        ),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["role", "approval", "-created_at", "-id"], name="users_role_approval_newest"),
        ),
    ]
