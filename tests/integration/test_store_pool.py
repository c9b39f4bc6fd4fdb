"""The services' connection pools give connections back without a reset query."""

from __future__ import annotations

from cstor.store.pool import create_pool


async def test_a_connection_given_back_mid_transaction_comes_back_out_of_it(
    database_url: str,
) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS pool_probe (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
            await conn.execute("SELECT pg_advisory_xact_lock(4242)")
        # The one connection again: its transaction ended unfinished on release, taking
        # the row and the transaction's lock with it.
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"
            )
            assert held == 0
    finally:
        await pool.close()


async def test_giving_a_connection_back_sends_no_reset_query(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'pool-probe'")
        # A reset query would have run RESET ALL and cleared it.
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "pool-probe"
    finally:
        await pool.close()
