"""Fill the duplicate-detection keys of existing accounts and contacts."""

from django.db import migrations


def fill(apps, schema_editor):
    from loudou.leads.normalize import normalize_company, normalize_email, normalize_phone

    Account = apps.get_model("customers", "Account")
    Contact = apps.get_model("customers", "Contact")
    accounts = list(Account.objects.only("pk", "name"))
    for account in accounts:
        account.name_key = normalize_company(account.name)
    Account.objects.bulk_update(accounts, ["name_key"], batch_size=1000)
    contacts = list(Contact.objects.only("pk", "mobile", "phone", "email"))
    for contact in contacts:
        contact.mobile_key = normalize_phone(contact.mobile) or normalize_phone(contact.phone)
        contact.email_key = normalize_email(contact.email)
    Contact.objects.bulk_update(contacts, ["mobile_key", "email_key"], batch_size=1000)


def clear(apps, schema_editor):
    """The keys are derived; going back leaves nothing to undo."""


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_dedupe_keys")]

    operations = [migrations.RunPython(fill, clear)]
