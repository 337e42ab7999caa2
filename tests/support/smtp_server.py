#!/usr/bin/env python3
"""A real SMTP server for dialin's tests (aiosmtpd), listening on loopback.

Each accepted message is written, decoded, as one JSON file in --out
(message_id, from, to, subject, text, html, headers), atomically via a rename,
so a test can read what was really received. The first line on stdout is the
port it listens on (pass --port 0 for a free one).

--reply CODE answers every message with that SMTP reply (e.g. "550 5.1.1 no such
user") instead of accepting it.

--max-rate N limits what it accepts to N messages a second, as a relay does:
with --over-rate slow it answers late (a slow relay), with --over-rate refuse
it answers "451 4.7.0 Too many messages, slow down" above N in any second
(a throttling relay), and appends a line per refusal to --out/refusals.log.

--out/connections.log holds the most connections that were open at once.
"""

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
import time
import uuid
from email import policy
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out, reply, max_rate, over_rate):
        self.out = out
        self.reply = reply
        self.max_rate = max_rate
        self.over_rate = over_rate
        self.next_slot = 0.0
        self.accepted = collections.deque()

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        if self.max_rate and self.over_rate == "slow":
            # Each message waits for the slot after the one before it.
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + 1.0 / self.max_rate
            await asyncio.sleep(slot - now)
        elif self.max_rate:
            now = time.monotonic()
            while self.accepted and self.accepted[0] <= now - 1.0:
                self.accepted.popleft()
            if len(self.accepted) >= self.max_rate:
                with open(os.path.join(self.out, "refusals.log"), "a", encoding="utf-8") as log:
                    log.write("%d\n" % int(time.time() * 1000))
                return "451 4.7.0 Too many messages, slow down"
            self.accepted.append(now)
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            # When the message was accepted, in Unix milliseconds.
            "received_at": int(time.time() * 1000),
            "message_id": str(message.get("Message-ID", "")),
            "envelope_from": envelope.mail_from,
            "envelope_to": list(envelope.rcpt_tos),
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "subject": str(message.get("Subject", "")),
            "text": text.get_content() if text else "",
            "html": html.get_content() if html else "",
            "headers": {key: str(value) for key, value in message.items()},
        }
        name = uuid.uuid4().hex
        partial = os.path.join(self.out, "." + name + ".partial")
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.rename(partial, os.path.join(self.out, name + ".json"))
        return "250 OK"


class Connections:
    """How many connections are open, and the most that ever were at once."""

    def __init__(self, out):
        self.path = os.path.join(out, "connections.log")
        self.open = 0
        # A restarted server goes on from what the one before it saw.
        try:
            with open(self.path, encoding="utf-8") as file:
                self.most = int(file.read().strip() or 0)
        except FileNotFoundError:
            self.most = 0

    def opened(self):
        self.open += 1
        if self.open > self.most:
            self.most = self.open
            partial = self.path + ".partial"
            with open(partial, "w", encoding="utf-8") as file:
                file.write("%d\n" % self.most)
            os.rename(partial, self.path)

    def closed(self):
        self.open -= 1


class CountedSMTP(SMTP):
    def __init__(self, handler, connections, **kwargs):
        super().__init__(handler, **kwargs)
        self.connections = connections

    def connection_made(self, transport):
        self.connections.opened()
        super().connection_made(transport)

    def connection_lost(self, error):
        self.connections.closed()
        super().connection_lost(error)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reply", default=None)
    parser.add_argument("--max-rate", type=float, default=None)
    parser.add_argument("--over-rate", choices=["slow", "refuse"], default="slow")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    loop = asyncio.new_event_loop()
    handler = Handler(args.out, args.reply, args.max_rate, args.over_rate)
    connections = Connections(args.out)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: CountedSMTP(handler, connections, hostname="dialin-test-smtp"), host="127.0.0.1", port=args.port
        )
    )
    print(server.sockets[0].getsockname()[1], flush=True)

    stop = loop.create_future()

    def finish():
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finish)
    # Stop too when the test that started us goes away (its end of stdin closes).
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1) or finish())
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())

if __name__ == "__main__":
    main()
