"""Messages rendered from the Jinja2 files in templates/: per template an email
(`<name>.subject.txt`, `<name>.txt`, `<name>.html`, the HTML autoescaped) and an SMS
(`<name>.sms.txt`). Money is shown in major units with its currency ("75.00 USD"), times in the
place's time zone with the zone's name."""
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATES = ("welcome", "reservation_confirmed", "reservation_cancelled", "reservation_expired",
             "reservation_rescheduled", "payment_failed", "payment_refunded")

# ISO 4217 minor-unit exponents that are not 2 (Stripe's list of zero- and three-decimal currencies).
_EXPONENTS = {
    **dict.fromkeys(("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                     "vnd", "vuv", "xaf", "xof", "xpf"), 0),
    **dict.fromkeys(("bhd", "jod", "kwd", "omr", "tnd"), 3),
}


def money(amount, currency):
    """Minor units as major units with the currency: money(7500, "usd") == "75.00 USD"."""
    exponent = _EXPONENTS.get(currency.lower(), 2)
    major = Decimal(int(amount)).scaleb(-exponent)
    return f"{major:.{exponent}f} {currency.upper()}"


def when(value, zone=None):
    """A time as people at the place read it: "Fri 01 Jan 2027 11:00 CET (Europe/Paris)"; in UTC,
    "Fri 01 Jan 2027 10:00 UTC", when the place's zone is UTC or not known (an older event)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    try:
        place_zone = ZoneInfo(zone) if zone and zone != "UTC" else None
    except (ZoneInfoNotFoundError, ValueError):
        place_zone = None
    if place_zone is None:
        return value.astimezone(ZoneInfo("UTC")).strftime("%a %d %b %Y %H:%M UTC")
    local = value.astimezone(place_zone)
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()} ({zone})"


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, directory=TEMPLATES_DIR):
        self.environment = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,  # a missing value is a bug, not a blank in a customer's email
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
        )
        self.environment.filters["money"] = money
        self.environment.filters["when"] = when

    def email(self, template, context):
        subject = self._render(f"{template}.subject.txt", context)
        return Email(subject=" ".join(subject.split()),  # one line, whatever the file holds
                     text=self._render(f"{template}.txt", context),
                     html=self._render(f"{template}.html", context))

    def sms(self, template, context):
        return " ".join(self._render(f"{template}.sms.txt", context).split())

    def _render(self, name, context):
        return self.environment.get_template(name).render(**context).strip()
