"""The roadmap of seed 002 (DOMAIN §9) as the starting configuration."""

from django.db import migrations

from loudou.onboarding.defaults import install


def forwards(apps, schema_editor):
    Band = apps.get_model("onboarding", "Band")
    Standard = apps.get_model("onboarding", "Standard")
    if not Band.objects.exists():
        install(Band, Standard)


def backwards(apps, schema_editor):
    apps.get_model("onboarding", "Band").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
