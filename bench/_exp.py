import asyncio, time, httpx, asyncpg
from krousar_common.testing import ServiceProcess, TestStack
from bench import bench_payments as bp

async def main(n):
    stack = TestStack(); await stack.check_reachable(); await stack.create_topics()
    payments = await ServiceProcess("payments", stack).start()
    try:
        await bp.load_projection(stack, n)
        async with httpx.AsyncClient(base_url=payments.url, timeout=1800) as client:
            t=time.time(); run = await bp.calculate(client, "2023-03"); print("calc", time.time()-t, flush=True)
            t=time.time(); await bp.instruct(client, run); print("instruct", time.time()-t, flush=True)
            t=time.time()
            while not await bp.drained(stack): await asyncio.sleep(0.2)
            print("relay", time.time()-t, flush=True)
    finally:
        payments.stop(); await stack.drop()
import sys; asyncio.run(main(int(sys.argv[1])))
