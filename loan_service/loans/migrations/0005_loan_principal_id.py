# ?ordering=principal orders by (principal, id) (cursor pages, common.pagination): an index in that order.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("loans", "0004_report_balances"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="loan", name="loan_principal"),
        migrations.AddIndex(
            model_name="loan",
            index=models.Index(fields=["principal", "id"], name="loan_principal_id"),
        ),
    ]
