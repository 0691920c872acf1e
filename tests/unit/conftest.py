from tests.unit.auth_fixtures import accounts, clock, tokens  # noqa: F401  (fixtures)
