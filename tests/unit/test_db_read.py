"""`Sessions.read()`: a unit of work that only reads costs its statements and nothing more on
MariaDB (no COMMIT round trip), refuses writes, and sees what is committed; on SQLite it is
`transaction()`."""
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from common.storage.base import Base
from common.storage.engines import Sessions, ensure_database
from tests.conftest import BACKENDS, database_template, drop_databases


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(50))


@pytest.fixture(params=BACKENDS)
def notes_db(request, tmp_path):
    template = database_template(request.param, tmp_path)
    url = template.replace("<service>", "notes")
    ensure_database(url)
    sessions = Sessions.for_url(url, pool_size=1)
    Note.metadata.create_all(sessions.engine)
    yield sessions
    sessions.dispose()
    drop_databases(template, ["notes"])


def _add(sessions, text):
    with sessions.transaction() as session:
        session.add(Note(text=text))


def test_a_read_sees_what_is_committed(notes_db):
    _add(notes_db, "first")
    with notes_db.read() as session:
        assert [note.text for note in session.scalars(sa.select(Note))] == ["first"]
    _add(notes_db, "second")
    with notes_db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 2


def test_a_failing_read_gives_its_connection_back(notes_db):
    for _ in range(5):  # one pooled connection each way: a leak would block the second
        with pytest.raises(LookupError), notes_db.read() as session:
            session.scalar(sa.select(Note.id))
            raise LookupError("the caller's own error")
    with notes_db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0


@pytest.mark.parametrize("notes_db", ["mariadb"], indirect=True)
def test_on_mariadb_a_read_sends_its_query_and_nothing_else(notes_db, commands_sent):
    _add(notes_db, "first")
    with notes_db.read() as session:  # warm: the pool's first connection and its set-up
        session.get(Note, 1)
    commands_sent.clear()
    with notes_db.read() as session:
        assert session.get(Note, 1).text == "first"
    assert [sql.split()[0].upper() for _, sql in commands_sent] == ["SELECT"]
    commands_sent.clear()
    with notes_db.transaction() as session:  # a transaction still ends in COMMIT
        session.get(Note, 1)
    assert [sql.split()[0].upper() for _, sql in commands_sent] == ["SELECT", "COMMIT"]


@pytest.mark.parametrize("notes_db", ["mariadb"], indirect=True)
def test_on_mariadb_a_read_refuses_to_write(notes_db):
    with pytest.raises(sa.exc.DBAPIError) as refused, notes_db.read() as session:
        session.add(Note(text="sneaked in"))
        session.flush()
    assert refused.value.orig.args[0] == 1792  # "Cannot execute statement in a READ ONLY transaction"
    with notes_db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0
