"""Who acts, as every service's RPC entrypoints receive it: the gateway passes the caller
({"user_id", "permissions"}); None from `nameko shell` means an operator (full trust)."""
from marshmallow import fields

from common.contracts.auth import permission_name
from common.schemas import Id, LenientSchema


class ActorSchema(LenientSchema):
    """The caller the gateway passes; None over RPC means an operator (full trust)."""

    user_id = fields.Integer(required=True, strict=True, validate=Id)
    permissions = fields.List(permission_name, load_default=list)


def load_actor(actor, required=False):
    """`actor` checked against ActorSchema; None stays None (an operator) unless `required`."""
    if actor is None and not required:
        return None
    if actor is None:
        return ActorSchema().load_or_raise({})  # "user_id: Missing data for required field."
    return ActorSchema().load_or_raise(actor)
