#!/usr/bin/env python3
"""A userspace TCP proxy on 127.0.0.1 that adds a fixed delay to each direction (default 20 ms),
to benchmark registry clients as if the registry were a round trip of 40 ms away. Counts the
connections it accepted. Loopback only.

Usage: delayproxy.py LISTEN_PORT TARGET_PORT [DELAY_MS]   (LISTEN_PORT 0 picks one; the port is
printed as `listening on 127.0.0.1:PORT`, connection counts go to stderr when it is stopped)
"""
import asyncio
import sys
import time

connections = 0


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def pump():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(pump(), deliver())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 20.0) / 1000

    async def handle(client_r, client_w):
        global connections
        connections += 1
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w, delay), pipe(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        print(f"connections: {connections}", file=sys.stderr, flush=True)
