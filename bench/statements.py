"""Database round trips per booking (`python -m bench --only booking --statements`): MariaDB's
general log is switched on before the stack starts (so every pooled connection's Connect row
names its database), and after the booking runs the statements sent during them are counted
per database of the run. Divided by the bookings made, that is what one booking costs each
service in round trips, whatever the machine's pace. The log is switched back off, and its
table emptied, at the end.

The general log is server-wide and slows MariaDB: use it for this count, not for timings."""
from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager

import sqlalchemy as sa

# What a statement is counted as: its first word, with the ORM's aliases left out.
COUNTED_COMMANDS = ("Query", "Execute")
_DATABASE_OF_CONNECT = re.compile(r" on (\S+)")


@contextmanager
def general_log(server_url: str):
    """MariaDB's general log into mysql.general_log while inside; yields a `Statements`."""
    engine = sa.create_engine(server_url + "/mysql", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            previous = connection.exec_driver_sql("SELECT @@GLOBAL.general_log, @@GLOBAL.log_output").one()
            connection.exec_driver_sql("SET GLOBAL log_output = 'TABLE'")
            connection.exec_driver_sql("TRUNCATE TABLE mysql.general_log")
            connection.exec_driver_sql("SET GLOBAL general_log = 1")
        try:
            yield Statements(engine)
        finally:
            with engine.connect() as connection:
                connection.exec_driver_sql(f"SET GLOBAL general_log = {int(previous[0])}")
                connection.exec_driver_sql("SET GLOBAL log_output = %s", (previous[1],))
                connection.exec_driver_sql("TRUNCATE TABLE mysql.general_log")
    finally:
        engine.dispose()


class Statements:
    def __init__(self, engine):
        self.engine = engine

    def now(self):
        """The server's clock, which stamps the log."""
        with self.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT NOW(6)").scalar()

    def count(self, databases: dict[str, str], start, end) -> dict:
        """{service: {"total": n, "by_kind": {"SELECT": n, ...}}} for the statements sent
        between `start` and `end` on connections to the given databases ({service: name})."""
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT thread_id, command_type, event_time, CONVERT(argument USING utf8mb4) "
                "FROM mysql.general_log WHERE command_type IN ('Connect', 'Query', 'Execute')").all()
        return count_statements(rows, databases, start, end)


def count_statements(rows, databases: dict[str, str], start, end) -> dict:
    """The counting, over general-log rows (thread_id, command_type, event_time, argument)."""
    service_of_database = {name: service for service, name in databases.items()}
    service_of_thread = {}
    for thread_id, command, _, argument in rows:
        if command == "Connect" and (match := _DATABASE_OF_CONNECT.search(argument or "")):
            service_of_thread[thread_id] = service_of_database.get(match.group(1))
    counted = {service: Counter() for service in databases}
    for thread_id, command, when, argument in rows:
        service = service_of_thread.get(thread_id)
        if command in COUNTED_COMMANDS and service and start <= when <= end:
            counted[service][(argument or "").split(maxsplit=1)[0].upper() if argument else "?"] += 1
    return {service: {"total": sum(kinds.values()), "by_kind": dict(kinds.most_common())}
            for service, kinds in counted.items()}


def per_booking(counted: dict, bookings: int) -> dict:
    """Statements per booking, per service and in all."""
    if not bookings:
        return {}
    shares = {service: round(info["total"] / bookings, 1) for service, info in counted.items()}
    return {**shares, "all": round(sum(info["total"] for info in counted.values()) / bookings, 1)}
