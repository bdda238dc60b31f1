from django.conf import settings


def loudou(request):
    """Values every page needs: the currency and the company name."""
    return {
        "LOUDOU_CURRENCY": settings.LOUDOU_CURRENCY,
        "LOUDOU_COMPANY_NAME": settings.LOUDOU_COMPANY_NAME,
    }
