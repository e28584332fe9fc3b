"""store/pg_prepared.py: the commit statement over libpq, prepared once per connection,
its parameters as text. Every kind of parameter reaches the server exactly; a refusal is
a ServerError that leaves the connection usable."""
from __future__ import annotations

import pytest

from tests.conftest import PG_URL, postgres_url
from tether.store.pg_prepared import ServerError, execute, positional


@pytest.fixture
def conn():
    psycopg = pytest.importorskip("psycopg")
    postgres_url()  # skips (or fails in CI) without a server
    with psycopg.connect(PG_URL, autocommit=True) as c:
        yield c


def test_placeholders_are_numbered_in_order_and_a_name_used_twice_keeps_its_number():
    p = positional("x", "SELECT %(a)s, %(b)s, %(a)s::text, %(c)s")
    assert p.text == b"SELECT $1, $2, $1::text, $3" and p.params == ("a", "b", "c") and p.name == b"x"


def test_every_kind_of_parameter_reaches_the_server_exactly(conn):
    stmt = positional("t_kinds", "SELECT %(s)s::text, encode(%(b)s::bytea, 'hex'), "
                      "%(f)s::float8 = 0.30000000000000004::float8, %(f)s::float8::text, %(i)s::bigint + 1, "
                      "%(yes)s::boolean, %(no)s::boolean, %(none)s::text IS NULL")
    text = 'é € 😀 "q" \\ \n \\x00'
    row = execute(conn, stmt, {"s": text, "b": b"\x00\xff\\x'z", "f": 0.1 + 0.2, "i": 2 ** 62,
                               "yes": True, "no": False, "none": None})
    assert row is not None
    assert row[0] is not None and row[0].decode() == text
    assert row[1] == b"00ff5c78277a"
    assert row[2] == b"t" and float(row[3] or b"") == 0.1 + 0.2
    assert row[4:] == [str(2 ** 62 + 1).encode(), b"t", b"f", b"t"]


def test_no_row_is_none_and_a_refusal_leaves_the_connection_usable(conn):
    stmt = positional("t_div", "SELECT 1 / %(n)s::int WHERE %(n)s::int >= 0")
    assert execute(conn, stmt, {"n": -1}) is None
    with pytest.raises(ServerError, match="division by zero"):
        execute(conn, stmt, {"n": 0})
    assert conn.info.transaction_status == 0  # idle: the statement was its own transaction
    assert execute(conn, stmt, {"n": 1}) == [b"1"]  # still prepared on this connection


def test_each_connection_prepares_the_statement_itself(conn):
    import psycopg
    stmt = positional("t_twice", "SELECT %(x)s::int * 2")
    assert execute(conn, stmt, {"x": 2}) == [b"4"]
    assert PG_URL is not None
    with psycopg.connect(PG_URL, autocommit=True) as other:
        assert execute(other, stmt, {"x": 3}) == [b"6"]
    assert execute(conn, stmt, {"x": 4}) == [b"8"]
