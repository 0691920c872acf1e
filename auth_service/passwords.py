"""Password hashing with argon2id (argon2-cffi); hashes are never returned by any API."""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hash and verify passwords. `offload` runs the (deliberately slow) hash off the event
    loop: the service passes eventlet's thread pool so one login never stalls the others."""

    def __init__(self, hasher=None, offload=None):
        self._hasher = hasher or PasswordHasher()
        self._offload = offload or (lambda function, *args: function(*args))
        # Verifying unknown accounts against a real hash keeps their timing like known ones.
        self._decoy_hash = self._hasher.hash("decoy-password-for-unknown-accounts")

    def hash(self, password):
        return self._offload(self._hasher.hash, password)

    def verify(self, password_hash, password):
        """True when `password` matches; also spends the same time for unknown accounts."""
        try:
            return self._offload(self._hasher.verify, password_hash or self._decoy_hash, password) \
                and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash):
        return self._hasher.check_needs_rehash(password_hash)
