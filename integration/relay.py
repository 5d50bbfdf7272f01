"""A TCP relay that adds latency: `relay.py LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT DELAY_FILE`.

Every chunk is forwarded, in order, `delay` seconds after it arrived, where `delay` is the number
in DELAY_FILE when the chunk arrived (0 when the file is missing). The multi-host test puts it in
front of a worker as the stand-in for `tc qdisc … netem delay` on kernels without sch_netem."""
import asyncio
import sys

LISTEN_HOST, LISTEN_PORT, TO_HOST, TO_PORT, DELAY_FILE = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]


def delay():
    try:
        with open(DELAY_FILE) as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + delay(), data))
        except OSError:
            pass
        queue.put_nowait((loop.time() + delay(), b""))

    async def write():
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                break
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                break
        writer.close()

    await asyncio.gather(read(), write())


async def connection(client_reader, client_writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(TO_HOST, TO_PORT)
    except OSError:
        client_writer.close()  # nothing listens behind: the connection closes at once
        return
    await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer), return_exceptions=True)


async def main():
    server = await asyncio.start_server(connection, LISTEN_HOST, LISTEN_PORT)
    print("relay ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
