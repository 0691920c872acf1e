"""Public shapes of the auth API: the same schemas validate HTTP bodies (at the auth
service's RPC edge) and document them in the gateway's OpenAPI."""
import unicodedata

from marshmallow import ValidationError as FieldError
from marshmallow import fields, validate, validates_schema

from common.schemas import Id, LenientSchema, PageQuery, Pattern, PrintableText, Schema, UtcDateTime, WholeNumber

ROLE_CATEGORIES = ("admin", "customer")


def normalise_email(value):
    """An email as accounts are keyed by it: NFKC (a fullwidth `ａｎｎ` is `ann`), then
    lower-case. The one rule: schemas apply it at every door, accounts again (idempotent)."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def _refuse_format_characters(value):
    """Unicode format characters (category Cf: zero-width spaces, joiners, direction marks)
    are invisible: refused in an email, so no look-alike of an account can exist."""
    if any(unicodedata.category(char) == "Cf" for char in value):
        raise FieldError("Invisible format characters (such as a zero-width space) are not allowed.")


class NormalisedEmail(fields.Email):
    """The email of an account, wherever one enters (registration, admin-created users)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        _refuse_format_characters(value)
        return super()._deserialize(normalise_email(value), attr, data, **kwargs)


class EmailToFind(fields.String):
    """An email given to look an account up (login, a filter): normalised like NormalisedEmail
    but not checked for form, so a malformed one finds nothing instead of telling why."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        _refuse_format_characters(value)
        return normalise_email(value)


email = NormalisedEmail(required=True, validate=validate.Length(max=254))
# Where a client comes from (the gateway passes the connection's address): the per-address
# throttling key. None from the operator console: no per-address limit applies.
client_address = fields.String(validate=[validate.Length(min=1, max=64), PrintableText], allow_none=True,
                               load_default=None)
password = fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=128))
name = fields.String(validate=[validate.Length(min=1, max=100), PrintableText], allow_none=True)
# A permission's name (`reservations:read_any`); whether it exists is the role directory's question.
permission_name = fields.String(validate=[validate.Length(min=1, max=64), PrintableText])
role_name = fields.String(validate=[validate.Length(min=1, max=64), PrintableText])
phone = fields.String(
    validate=Pattern(r"^\+[1-9]\d{6,14}$", error="Use E.164 format, e.g. +14155550100."),
    allow_none=True,
)


class UserRefSchema(Schema):
    user_id = fields.Integer(required=True, strict=True, validate=Id)


class SessionRefSchema(UserRefSchema):
    """One session of one user (logout, principal)."""

    session_id = fields.String(required=True, validate=[
        validate.Length(min=1, max=64), Pattern(r"^[A-Za-z0-9-]+$", error="Not a session id.")])


class UserDeactivateSchema(UserRefSchema):
    """A user to deactivate, and why (kept in the log)."""

    reason = fields.String(validate=[validate.Length(min=1, max=500), PrintableText], allow_none=True)


class JsonBoolean(fields.Boolean):
    """JSON true or false only: "no", 0 or 1 must not pass for a yes or a no."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class UserAdminUpdateSchema(Schema):
    """What an operator changes about a user's account (`PATCH /v1/users/{id}`)."""

    is_active = JsonBoolean(required=True)
    reason = fields.String(validate=[validate.Length(min=1, max=500), PrintableText], allow_none=True)


class SessionsEndedSchema(LenientSchema):
    ended = fields.Integer()


class RoleIdSchema(Schema):
    """A role by its id (RoleRefSchema is a role by id or by name, inside a payload)."""

    role_id = fields.Integer(required=True, strict=True, validate=Id)


class RegisterSchema(Schema):
    email = email
    password = password
    name = name
    phone = phone


class ClientAddressSchema(Schema):
    client_address = client_address


class LoginSchema(Schema):
    email = EmailToFind(required=True, validate=[validate.Length(min=1, max=254), PrintableText])
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=[
        validate.Length(min=1, max=200), Pattern(r"^[A-Za-z0-9_-]+$", error="Not a refresh token.")])


class TokenPairSchema(LenientSchema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer()


class RoleRefSchema(Schema):
    """A role given by id (must exist) or by name (created when missing)."""

    id = WholeNumber(validate=Id)
    name = role_name
    category = fields.String(validate=validate.OneOf(ROLE_CATEGORIES), load_default="customer")

    @validates_schema
    def _one_of_id_or_name(self, data, **_):
        if ("id" in data) == ("name" in data):
            raise FieldError("Give exactly one of 'id' or 'name'.")


class RoleSummarySchema(LenientSchema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()


class UserSchema(LenientSchema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    notify_email = fields.Boolean()
    notify_sms = fields.Boolean()
    is_active = fields.Boolean()
    roles = fields.List(fields.Nested(RoleSummarySchema))
    permissions = fields.List(fields.String())
    created_at = UtcDateTime()


class UserUpdateSchema(Schema):
    name = name
    phone = phone
    notify_email = fields.Boolean()
    notify_sms = fields.Boolean()


class UserCreateSchema(RegisterSchema):
    roles = fields.List(fields.Nested(RoleRefSchema), load_default=list)


class UserRolesSchema(Schema):
    roles = fields.List(fields.Nested(RoleRefSchema), required=True)


class UserFilterSchema(PageQuery):
    email = EmailToFind(validate=[validate.Length(min=1, max=254), PrintableText])
    role = role_name


class RoleSchema(LenientSchema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()
    permissions = fields.List(fields.String())
    user_count = fields.Integer()


class RoleCreateSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=64), PrintableText])
    category = fields.String(required=True, validate=validate.OneOf(ROLE_CATEGORIES))
    permissions = fields.List(permission_name, load_default=list)


class RoleUpdateSchema(Schema):
    name = role_name
    category = fields.String(validate=validate.OneOf(ROLE_CATEGORIES))
    permissions = fields.List(permission_name)


class PermissionChangeSchema(RoleIdSchema):
    """One permission granted to or revoked from one role (operator calls)."""

    permission = fields.String(required=True, validate=permission_name.validators)


class PermissionSchema(LenientSchema):
    name = fields.String()
    description = fields.String()

