"""The session cookie on a Django response: td_web's ``RawMorsel`` against the public
``response.set_cookie``, each against a response without a cookie, measured in the same run.

    .venv/bin/python bench/django_cookie.py [--rounds 20000]

Prints microseconds per response and the extra cost of each way over no cookie at all.
"""

from __future__ import annotations

import argparse
import timeit

import django
from django.conf import settings

HEADER = "td_session=AbCdEfGhIjKlMnOpQrStUvWx; Max-Age=1800; Path=/; HttpOnly; SameSite=Lax"
#: As the core hands it over (``Telemetry.response_cookie_parts``).
PARTS = (
    "td_session",
    "AbCdEfGhIjKlMnOpQrStUvWx",
    HEADER[len("td_session=AbCdEfGhIjKlMnOpQrStUvWx") :],
    HEADER,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    settings.configure()
    django.setup()
    from django.http import HttpResponse

    from td_web.django.cookies import add_cookie

    def no_cookie() -> None:
        HttpResponse().cookies.output()

    def raw_morsel() -> None:
        response = HttpResponse()
        add_cookie(response, PARTS)
        response.cookies.output()

    def set_cookie() -> None:
        response = HttpResponse()
        response.set_cookie(
            "td_session",
            "AbCdEfGhIjKlMnOpQrStUvWx",
            max_age=1800,
            path="/",
            httponly=True,
            samesite="Lax",
        )
        response.cookies.output()

    timings: dict[str, float] = {}
    for _ in range(5):  # interleaved, so that warming up and machine noise hit all three alike
        for way in (no_cookie, raw_morsel, set_cookie):
            micros = timeit.timeit(way, number=args.rounds) / args.rounds * 1e6
            timings[way.__name__] = min(micros, timings.get(way.__name__, micros))
    base = timings["no_cookie"]
    for name, micros in timings.items():
        print(f"{name:>11}: {micros:6.2f} µs per response, +{micros - base:5.2f} µs over none")


if __name__ == "__main__":
    main()
