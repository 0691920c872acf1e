"""Stripe behind a small typed wrapper: every call either returns plain data or raises
StripeDeclined (Stripe said no) or StripeUnavailable (no answer we can trust)."""
import json
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
import requests.adapters
import stripe
from marshmallow import fields, validate

from common.errors import ValidationError
from common.schemas import MAX_ID, LenientSchema

# Where the SDK is pointed (stripe_endpoint): Stripe itself, or localstripe where `make run`
# starts it, with a key it accepts (localstripe takes any).
STRIPE_API_BASE = "https://api.stripe.com"
LOCALSTRIPE_API_BASE = "http://127.0.0.1:8420"
LOCALSTRIPE_API_KEY = "sk_test_local_bookify"

# PaymentIntent statuses, as the payments domain sees them.
_SETTLED_AS_SUCCEEDED = {"succeeded"}
# requires_action means 3-D Secure; nobody can complete it for a server-side confirmation.
_SETTLED_AS_FAILED = {"requires_payment_method", "canceled", "requires_action"}


@dataclass(frozen=True)
class Intent:
    """The part of a Stripe PaymentIntent the payments domain needs."""

    id: str
    status: str
    amount: int
    currency: str
    metadata: dict = field(default_factory=dict)
    failure_code: str | None = None

    @property
    def outcome(self):
        """One of "succeeded", "failed", or "pending" while Stripe is still processing."""
        if self.status in _SETTLED_AS_SUCCEEDED:
            return "succeeded"
        if self.status in _SETTLED_AS_FAILED:
            return "failed"
        return "pending"

    @property
    def failure_reason(self):
        if self.failure_code:
            return self.failure_code
        return "authentication_required" if self.status == "requires_action" else self.status

    @classmethod
    def from_stripe(cls, data):
        """From a PaymentIntent as a dict (stripe 16 objects: `.to_dict()` first)."""
        error = data.get("last_payment_error") or {}
        return cls(
            id=data["id"], status=data["status"], amount=data["amount"], currency=data["currency"],
            metadata=dict(data.get("metadata") or {}), failure_code=error.get("code"),
        )


@dataclass(frozen=True)
class StripeRefundResult:
    """What Stripe says of a refund it took: its id, amount and status ("succeeded", "pending"...)."""

    id: str
    amount: int
    status: str


@dataclass(frozen=True)
class WebhookEvent:
    """A webhook whose signature checked out: the event's id, type and the object it is about."""

    id: str
    type: str
    object: dict


class StripeDeclined(Exception):
    """Stripe refused: a declined card, an unknown payment method, a refund it won't make."""

    def __init__(self, code, message, intent_id=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.intent_id = intent_id


class StripeUnavailable(Exception):
    """Stripe could not be reached, timed out, failed, or refused our credentials: the
    outcome of the call is unknown, so whatever it was about stays pending."""


# How far a webhook's signed time may be from ours, either way (Stripe's SDK checks only the past).
WEBHOOK_TOLERANCE_SECONDS = 300


class _PaymentError(LenientSchema):
    code = fields.String(allow_none=True, validate=validate.Length(max=255))


class _IntentShape(LenientSchema):
    """What the payments domain reads of a PaymentIntent in an event (Stripe sends more)."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    status = fields.String(required=True, validate=validate.Length(min=1, max=64))
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_ID))
    currency = fields.String(required=True, validate=validate.Length(min=1, max=16))
    metadata = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.Length(max=500)),
                           load_default=dict)
    last_payment_error = fields.Nested(_PaymentError, allow_none=True)


class _EventData(LenientSchema):
    object = fields.Dict(required=True)


class _EventShape(LenientSchema):
    """A Stripe event as far as we read it: every field we touch has the type we expect."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    data = fields.Nested(_EventData, required=True)


_PAYMENT_ID = re.compile(r"[1-9][0-9]{0,18}")


class InvalidWebhook(Exception):
    """A webhook that is not provably from Stripe (`field` "signature") or not an event ("payload")."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def uses_localstripe(api_key, api_base):
    """True when neither a Stripe key nor an API base is given: payments then go to
    localstripe, which `make run` starts for exactly this case."""
    return not (api_key or "").strip() and not (api_base or "").strip()


def stripe_endpoint(api_key, api_base):
    """(key, API base) the SDK is given, from STRIPE_API_KEY and STRIPE_API_BASE: a base when
    one is given (with the local key if no key is); Stripe itself for a key alone; localstripe
    on 127.0.0.1:8420 for neither."""
    api_key, api_base = (api_key or "").strip(), (api_base or "").strip().rstrip("/")
    if uses_localstripe(api_key, api_base):
        return LOCALSTRIPE_API_KEY, LOCALSTRIPE_API_BASE
    return api_key or LOCALSTRIPE_API_KEY, api_base or STRIPE_API_BASE


class StripeGateway:
    """PaymentIntents, refunds and webhook events through the official SDK.
    An empty `api_base` means api.stripe.com; tests point it at localstripe."""

    def __init__(self, api_key, api_base="", timeout=10.0, webhook_secret="", connections=16,
                 webhook_tolerance_seconds=WEBHOOK_TOLERANCE_SECONDS):
        self.webhook_secret = webhook_secret
        self.webhook_tolerance_seconds = webhook_tolerance_seconds
        self.api_base = api_base.rstrip("/") or STRIPE_API_BASE
        self._session = _shared_session(connections)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.api_base},
            http_client=stripe.RequestsClient(timeout=timeout, session=self._session),
            # No SDK retries: an unanswered create is settled by reconcile, by the webhook or
            # by the caller retrying with its idempotency key (and localstripe ignores
            # Idempotency-Key, so an SDK retry there would charge twice).
            max_network_retries=0,
        )

    @classmethod
    def from_config(cls, config):
        """From the STRIPE block of config.yaml: where stripe_endpoint says."""
        api_key, api_base = stripe_endpoint(config.get("api_key"), config.get("api_base"))
        return cls(
            api_key=api_key,
            api_base=api_base,
            timeout=float(config.get("timeout_seconds", 10)),
            webhook_secret=config.get("webhook_secret") or "",
            webhook_tolerance_seconds=int(config.get("webhook_tolerance_seconds") or WEBHOOK_TOLERANCE_SECONDS),
        )

    def create_intent(self, *, amount, currency, payment_method, metadata, idempotency_key,
                      customer=None, off_session=False):
        """Create and confirm a card PaymentIntent in one call; with `customer`, charged to that
        customer's card (`off_session`: the customer is not there to authenticate)."""
        params = {
            "amount": amount,
            "currency": currency,
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {key: str(value) for key, value in metadata.items()},
        }
        if customer:
            params["customer"] = customer
            if off_session:
                params["off_session"] = True
        with _translated_errors():
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key})
        return Intent.from_stripe(intent.to_dict())

    def create_customer(self, metadata):
        """A new Stripe Customer; its id."""
        with _translated_errors():
            customer = self._client.v1.customers.create(
                params={"metadata": {key: str(value) for key, value in metadata.items()}})
        return customer.id

    def customer_exists(self, customer):
        """False when Stripe has no such customer any more (deleted in the dashboard, or an
        emulator started afresh); its saved cards are gone with it."""
        try:
            with _translated_errors():
                found = self._client.v1.customers.retrieve(customer)
        except StripeDeclined:
            return False
        return not getattr(found, "deleted", False)

    def attach_payment_method(self, payment_method, customer):
        """Attach a PaymentMethod to a customer, to charge it again later; the id of the
        attached PaymentMethod (a test alias such as pm_card_visa becomes a new one)."""
        with _translated_errors():
            attached = self._client.v1.payment_methods.attach(payment_method, params={"customer": customer})
        return attached.id

    def retrieve_intent(self, intent_id):
        """The PaymentIntent, or None when Stripe has none by that id."""
        try:
            with _translated_errors():
                intent = self._client.v1.payment_intents.retrieve(intent_id)
        except StripeDeclined as error:
            if error.code in ("resource_missing", "not_found"):
                return None
            raise
        return Intent.from_stripe(intent.to_dict())

    def find_intent(self, metadata_key, value):
        """The PaymentIntent whose metadata[metadata_key] is `value`, or None."""
        value = str(value)
        try:
            with _translated_errors():
                found = self._client.v1.payment_intents.search(
                    params={"query": f"metadata['{metadata_key}']:'{value}'"})
                candidates = [intent.to_dict() for intent in found.data]
        except StripeDeclined as error:
            if error.code != "not_found":
                raise
            # localstripe (and other emulators) have no Search API: scan the list instead.
            with _translated_errors():
                listing = self._client.v1.payment_intents.list(params={"limit": 100})
                candidates = [intent.to_dict() for intent in listing.auto_paging_iter()]
        for data in candidates:
            if (data.get("metadata") or {}).get(metadata_key) == value:
                return Intent.from_stripe(data)
        return None

    def refund(self, *, intent_id, amount, metadata, idempotency_key):
        """Refund `amount` of a PaymentIntent's charge."""
        params = {
            "payment_intent": intent_id,
            "amount": amount,
            "metadata": {key: str(value) for key, value in metadata.items() if value is not None},
        }
        with _translated_errors():
            refund = self._client.v1.refunds.create(
                params=params, options={"idempotency_key": idempotency_key})
        if refund.status in ("failed", "canceled"):
            raise StripeDeclined(refund.status, f"Stripe reports the refund {refund.status}")
        return StripeRefundResult(id=refund.id, amount=refund.amount, status=refund.status)

    def parse_webhook(self, payload, signature):
        """Verify a webhook's Stripe-Signature against our secret, signed within the tolerance
        of now either way, and read its event: refused (InvalidWebhook) unless every field
        the payments domain reads has the type it expects."""
        tolerance = self.webhook_tolerance_seconds
        try:
            stripe.WebhookSignature.verify_header(payload, signature, self.webhook_secret, tolerance)
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook("signature", str(error)) from None
        signed_at = _signed_at(signature)
        if signed_at > time.time() + tolerance:
            raise InvalidWebhook("signature", f"Timestamp in the future, beyond the tolerance zone ({signed_at})")
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError) as error:  # signed, but not JSON
            raise InvalidWebhook("payload", f"Not JSON: {error}") from None
        event = _load(_EventShape, data, "Not a Stripe event")
        stripe_object = event["data"]["object"]
        if event["type"].startswith("payment_intent."):
            intent = _load(_IntentShape, stripe_object, "Not a PaymentIntent")
            payment_id = intent["metadata"].get("payment_id")
            if payment_id is not None and not _is_payment_id(payment_id):
                raise InvalidWebhook("payload", f"metadata.payment_id: not a payment id ({payment_id[:30]!r})")
        return WebhookEvent(id=event["id"], type=event["type"], object=stripe_object)


def _signed_at(header):
    """The `t=` of a Stripe-Signature header that verify_header has accepted."""
    return next(int(value) for key, _, value in (item.partition("=") for item in header.split(","))
                if key.strip() == "t")


def _load(schema, data, message):
    if not isinstance(data, dict):
        raise InvalidWebhook("payload", f"{message}: expected a JSON object")
    try:
        return schema().load_or_raise(data)
    except ValidationError as invalid:
        raise InvalidWebhook("payload", f"{message}: {json.dumps(invalid.details, sort_keys=True)}") from None


def _is_payment_id(value):
    """One of our payment ids, as our charges write it: a decimal a database key can hold."""
    return _PAYMENT_ID.fullmatch(value) is not None and int(value) <= MAX_ID


def _shared_session(connections):
    """One HTTP session for every worker, keeping up to `connections` connections to Stripe
    alive. Without it the SDK keeps a session per thread, and under eventlet a thread is a
    greenthread: every nameko worker, so every charge, opened a new connection (and, to the
    real Stripe, paid a TLS handshake)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@contextmanager
def _translated_errors():
    """Turns the SDK's exceptions into the gateway's two failure outcomes."""
    try:
        yield
    except stripe.CardError as error:
        raise StripeDeclined(error.code or "card_declined", error.user_message or str(error),
                             intent_id=_intent_id_of(error)) from error
    except stripe.InvalidRequestError as error:
        code = error.code or ("not_found" if error.http_status == 404 else "invalid_request")
        raise StripeDeclined(code, error.user_message or str(error), intent_id=_intent_id_of(error)) from error
    except stripe.StripeError as error:  # connection, timeout, 5xx, rate limit, credentials
        raise StripeUnavailable(f"{type(error).__name__}: {error.user_message or error}") from error


def _intent_id_of(error):
    # Stripe returns the PaymentIntent it created with a decline; localstripe does not.
    intent = getattr(error.error, "payment_intent", None) if error.error is not None else None
    if intent is None or isinstance(intent, str):
        return intent
    return getattr(intent, "id", None)
