"""The site's own pages. ``request.telemetry`` comes from td_web's middleware."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from td_web.django import TelemetryHttpRequest

from .catalog.products import PRODUCTS
from .forms import ContactForm


def home(request: TelemetryHttpRequest) -> HttpResponse:
    return render(request, "tdsite/home.html", {"products": PRODUCTS})


def contact(request: TelemetryHttpRequest) -> HttpResponse:
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Only the topic: the address and the message are personal data and stay here.
        request.telemetry.signal("Contact.submitted", {"Contact.topic": form.cleaned_data["topic"]})
        return redirect("contact-thanks")
    return render(request, "tdsite/contact.html", {"form": form})


def contact_thanks(request: TelemetryHttpRequest) -> HttpResponse:
    return render(request, "tdsite/thanks.html")


@require_POST
def checkout(request: TelemetryHttpRequest) -> HttpResponse:
    items = [product for product in PRODUCTS if request.POST.get(product.slug)]
    total = sum(product.price for product in items)
    request.telemetry.signal(
        "Checkout.completed", {"Cart.items": len(items)}, float_value=round(total, 2)
    )
    return render(request, "tdsite/thanks.html", {"items": items, "total": total})


@csrf_exempt  # called by scripts (the README's curl), not by a form of the site
@require_POST
def invoice(request: TelemetryHttpRequest) -> HttpResponse:
    try:
        from .celery import build_invoice
    except ImportError:  # the demo installs td_web without the celery extra
        return HttpResponse("Celery is not installed: pip install 'td_web[celery]'", status=501)
    # The task's signals arrive with this visitor's session (td_web.celery carries it).
    build_invoice.delay(int(request.POST.get("items", "1")))
    return HttpResponse("Your invoice is on its way.", status=202)


@login_required
def account(request: TelemetryHttpRequest) -> HttpResponse:
    # login_required loaded request.user, so this request's signals carry the (hashed) user.
    return render(request, "tdsite/account.html")


def boom(request: TelemetryHttpRequest) -> HttpResponse:
    raise RuntimeError("the example site's deliberate failure")


def export_csv(request: TelemetryHttpRequest) -> StreamingHttpResponse:
    def rows() -> Iterator[str]:
        yield "slug,name,price\n"
        for product in PRODUCTS:
            yield f"{product.slug},{product.name},{product.price}\n"

    return StreamingHttpResponse(rows(), content_type="text/csv")


async def status(request: TelemetryHttpRequest) -> JsonResponse:
    """An async view: under ASGI (uvicorn, daphne) it runs on the event loop, td_web too."""
    await asyncio.sleep(0)
    return JsonResponse({"ok": True, "products": len(PRODUCTS)})


def healthz(request: TelemetryHttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
