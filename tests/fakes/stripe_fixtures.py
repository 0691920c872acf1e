"""pytest fixtures around localstripe; import them where needed:
`from tests.fakes.stripe_fixtures import localstripe  # noqa: F401`."""
import pytest

from tests.fakes.localstripe import LocalStripe


@pytest.fixture(scope="session")
def localstripe():
    """One real localstripe process for the test session; `.url` is its API base."""
    emulator = LocalStripe().start()
    yield emulator
    emulator.stop()
