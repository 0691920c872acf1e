from argon2 import PasswordHasher

from auth_service.passwords import Passwords


def test_hash_is_argon2id_and_not_the_password(fast_passwords):
    hashed = fast_passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed


def test_verify_accepts_the_right_password_only(fast_passwords):
    hashed = fast_passwords.hash("correct horse battery")
    assert fast_passwords.verify(hashed, "correct horse battery")
    assert not fast_passwords.verify(hashed, "correct horse battery!")


def test_unknown_account_never_verifies(fast_passwords):
    # The decoy hash is checked for timing, but an absent hash is never a match.
    assert not fast_passwords.verify(None, "decoy-password-for-unknown-accounts")


def test_garbage_hash_is_a_mismatch_not_a_crash(fast_passwords):
    assert not fast_passwords.verify("not-a-hash", "whatever")


def test_weaker_old_hashes_are_flagged_for_rehash():
    old = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    current = Passwords(PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    assert current.needs_rehash(old.hash("secret-password"))
    assert not current.needs_rehash(current.hash("secret-password"))


def test_offload_runs_the_hash():
    calls = []

    def offload(function, *args):
        calls.append(function.__name__)
        return function(*args)

    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), offload=offload)
    passwords.verify(passwords.hash("secret-password"), "secret-password")
    assert calls[-2:] == ["hash", "verify"]
