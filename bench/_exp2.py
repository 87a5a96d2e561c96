import asyncio, time, httpx, asyncpg
from krousar_common.testing import ServiceProcess, TestStack
from bench import bench_payments as bp
from payments import store

async def main(n):
    stack = TestStack(); await stack.check_reachable(); await stack.create_topics()
    payments = await ServiceProcess("payments", stack).start()
    try:
        await bp.load_projection(stack, n)
        async with httpx.AsyncClient(base_url=payments.url, timeout=1800) as client:
            run = await bp.calculate(client, "2023-03")
            await bp.instruct(client, run)
            while not await bp.drained(stack): await asyncio.sleep(0.2)
        payments.stop()
        conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database('payments')}")
        r = await conn.fetchrow("SELECT * FROM runs WHERE run_id=$1", __import__('uuid').UUID(run["run_id"]))
        mid = await conn.fetchval("SELECT payment_id FROM payment_lines WHERE run_id=$1 ORDER BY payment_id OFFSET 300000 LIMIT 1", r["run_id"])
        args = [r["run_id"], mid, 10000, '"a":1', '"b":2', 'topic', 'type']
        for q, a in ((store._INSTRUCTIONS_TO_PUBLISH, args),):
            for _ in range(2):
                t=time.time(); rows = await conn.fetch(q, *a); print("fetch", len(rows), time.time()-t)
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + q, *a)
            print("\n".join(p[0] for p in plan))
        async with conn.transaction():
            await conn.execute("UPDATE runs SET instructed_through=$2 WHERE run_id=$1", r["run_id"], mid)
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + store._INSTRUCT, r["run_id"], 5000, store.NIL_UUID)
            print("\n".join(p[0] for p in plan))
            raise RuntimeError("rollback")
    finally:
        payments.stop(); await stack.drop()
import sys; asyncio.run(main(int(sys.argv[1])))
