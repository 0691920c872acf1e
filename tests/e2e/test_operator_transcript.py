"""docs/operators.md replayed top to bottom: a fresh stack as `make run` starts it (SQLite, demo
data, the dev admin), the two things the page says happened first, then every `>>>` line of the
page typed in order into one real `make shell` (nameko shell, errors typed), and what it printed
checked against what the page shows under the line."""
import os
import re
import time
from datetime import datetime, timedelta, timezone

import kombu
import pytest
from kombu.exceptions import ChannelError

from auth_service.seed import DEMO_CUSTOMER
from scripts.run_local import DEV_ADMIN
from tests.e2e.conftest import ROOT, running_stack
from tests.e2e.operator_console import Console, matches, transcript

DOC = ROOT / "docs" / "operators.md"
# The page's booking days, and the days from today the replay uses in their place (bookings
# must lie ahead, and far enough that cancelling one refunds it in full).
DOC_DAYS = {"2026-12-24": 20, "2026-12-26": 22, "2026-12-27": 23}
DEMO_BOOKINGS = [("2026-12-24", 9, 11), ("2026-12-26", 14, 16)]  # Meeting Room A, as the page says
# Statements that read what an event or a just-answered call writes a moment later: an operator
# who typed them again a second later would see the page's output, so the replay may too.
# Only calls the audit trail leaves out, or whose trail the page does not show, are typed again.
EVENTUAL = ("list_notifications(", "audit_log(")
SETTLE_SECONDS = 15
METRICS_OFF = {f"{name}_METRICS_PORT": "0" for name in  # fixed ports would clash with other stacks
               ("AUTH", "RESERVATIONS", "PAYMENTS", "NOTIFICATIONS", "GATEWAY", "GRPC_GATEWAY")}


def today_for(text):
    """The page's text with its booking days moved to the replay's."""
    today = datetime.now(timezone.utc).date()
    moved = {day: (today + timedelta(days=ahead)).isoformat() for day, ahead in DOC_DAYS.items()}
    # In one pass: moved one at a time, a day moved onto another page day (on 5 December the
    # 26th becomes the 27th) would be moved again.
    return re.sub("|".join(map(re.escape, moved)), lambda found: moved[found.group()], text)


@pytest.fixture
def make_run_stack(tmp_path):
    admin_email, admin_password = DEV_ADMIN
    with running_stack("sqlite", tmp_path, BOOKIFY_DEMO_DATA="1", BOOKIFY_ADMIN_EMAIL=admin_email,
                       BOOKIFY_ADMIN_PASSWORD=admin_password, **METRICS_OFF) as api:
        yield api


def the_page_preconditions(api):
    email, password, _ = DEMO_CUSTOMER
    token = api.login(email, password)["access_token"]
    for number, (day, start, end) in enumerate(DEMO_BOOKINGS, start=1):
        begins = datetime.fromisoformat(today_for(day)).replace(tzinfo=timezone.utc)
        booked = api.book(token, 1, begins + timedelta(hours=start), begins + timedelta(hours=end))
        assert booked.status_code == 201, booked.text
        assert (booked.json()["id"], booked.json()["user_id"], booked.json()["payment_id"]) == (number, 2, number)
    with kombu.Connection(api.stack.env["AMQP_URI"]) as connection:
        exchange = kombu.Exchange("partners.events", type="topic", durable=True)
        connection.Producer().publish(b"{not json", exchange=exchange, routing_key="reservation_requested",
                                      declare=[exchange], content_type="application/json")
        # Parked before the console starts: the page lists it once, and its audit trail counts that once.
        deadline = time.monotonic() + SETTLE_SECONDS
        while waiting(connection, "partners.dead_letter") < 1:
            assert time.monotonic() < deadline, "the partner's message was not dead-lettered"
            time.sleep(0.2)


def waiting(connection, queue):
    """How many messages `queue` holds (0 while it does not exist yet)."""
    channel = connection.channel()
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # no such queue yet; the broker has closed the channel
        return 0
    finally:
        channel.close()


def test_the_operator_page_is_what_a_fresh_make_run_prints(make_run_stack):
    steps = transcript(DOC)
    assert len(steps) >= 30, "docs/operators.md lost its transcript"
    the_page_preconditions(make_run_stack)
    console = Console(ROOT, {**os.environ, **make_run_stack.stack.env})
    try:
        for step in steps:
            source, expected = [today_for(line) for line in step.source], today_for(step.expected)
            printed = console.run(source)
            if any(call in source[0] for call in EVENTUAL):
                for _ in range(SETTLE_SECONDS * 2):
                    if matches(expected, printed):
                        break
                    console.run(["import time; time.sleep(0.5)"])
                    printed = console.run(source)
            assert matches(expected, printed), (
                f"docs/operators.md line {step.line}: {' '.join(source)}\n"
                f"--- the page shows:\n{expected}--- the console printed:\n{printed}")
    finally:
        console.close()


# -- the reading of the page, without a stack ----------------------------------------------

def test_the_transcript_reads_statements_continuations_and_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n>>> not in a block\n```sh\n>>> nor here\n```\n"
                    "```python\n>>> x = f(1,\n...       2)\n>>> x\n{'a': 1,\n 'b': 2}\n>>> g()\n"
                    "Traceback (most recent call last):\n  ...\nKeyError: 'k'\n```\n")
    steps = transcript(page)
    assert [(s.source, s.expected, s.line) for s in steps] == [
        (["x = f(1,", "      2)"], "", 7),
        (["x"], "{'a': 1,\n 'b': 2}\n", 9),
        (["g()"], "Traceback (most recent call last):\n  ...\nKeyError: 'k'\n", 12)]


@pytest.mark.parametrize("expected, printed, same", [
    ("{'id': 8, 'status': 'cancelled'}", "{'id': 8,\n 'status': 'cancelled'}", True),
    ("{'id': 8, 'status': 'cancelled'}", "{'id': 9, 'status': 'cancelled'}", False),
    ("{'id': 8}", "{'id': 8, 'extra': 1}", False),
    ("'created_at': '<time>'", "'created_at': '2026-12-04T15:11:08.361652+00:00'", True),
    ("'created_at': '<time>'", "'created_at': None", False),
    ("'call_id': 'auth.create_user.<uuid>'", "'call_id': 'auth.create_user.80156b6d-853a-439b-a664-27a24f036d2c'",
     True),
    ("'duration_ms': <n>", "'duration_ms': 139", True),
    ("Traceback (most recent call last):\n  ...\ncommon.errors.NotFound: Reservation not found",
     'Traceback (most recent call last):\n  File "<console>", line 1, in <module>\n'
     "common.errors.NotFound: Reservation not found", True),
    ("Traceback (most recent call last):\n  ...\ncommon.errors.NotFound: Reservation not found",
     "Traceback (most recent call last):\n  ...\ncommon.errors.Conflict: Reservation not found", False),
    ("", "", True),
    ("", "None\n", False),
])
def test_printed_output_matches_the_page_up_to_placeholders(expected, printed, same):
    assert matches(expected, printed) is same
