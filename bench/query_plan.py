"""The query plan of availability's overlap query on MariaDB with 100k seeded reservations:
`python -m bench.query_plan` (about half a minute). Seeds a throwaway database the way
`make bench` does (bench/seed_load.py), runs EXPLAIN on the statement availability sends
(reservations_service/repository.py, `occupied_windows`) for one day of a place, prints the
plan and drops the database. Figures and the plan: docs/performance.md."""
import argparse
import uuid
from datetime import timedelta

import sqlalchemy as sa

from bench.seed_load import MAX_ROWS, SeedLayout, seed_reservations
from common.storage.migrations import upgrade
from reservations_service.models import Place
from reservations_service.repository import _occupied_query

SERVER = "mysql+pymysql://root@127.0.0.1:3306"


def explain(url, layout, rows):
    place_id, frm, to = layout.availability_span(7)
    statement = _occupied_query(excluding=False)
    values = {"place_id": place_id, "start": frm - timedelta(minutes=60), "end": to, "now": layout.now}
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def explained(connection, cursor, sql, parameters, context, executemany):
        return f"EXPLAIN {sql}", parameters  # the statement as the service sends it, explained

    try:
        with engine.connect() as connection:
            plan = connection.execute(statement, values)
            return str(statement), list(plan.keys()), [tuple(row) for row in plan]
    finally:
        engine.dispose()


def main():
    parser = argparse.ArgumentParser(prog="python -m bench.query_plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=MAX_ROWS)
    args = parser.parse_args()
    name = f"bookify_plan_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER}/{name}?charset=utf8mb4"
    upgrade("reservations_service", url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            places = [connection.execute(sa.insert(Place).values(
                name=f"Plan {k}", unit="hour", unit_price=2500, currency="usd", timezone="UTC", capacity=1,
                buffer_minutes=0, created_at=sa.func.now(), updated_at=sa.func.now())).inserted_primary_key[0]
                for k in range(20)]
        layout = SeedLayout(places, list(range(1, 9)))
        seed_reservations(url, layout, 0, args.rows)
        sql, columns, rows = explain(url, layout, args.rows)
        print(sql, "\n")
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join("" if value is None else str(value) for value in row))
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name}")
        engine.dispose()


if __name__ == "__main__":
    main()
