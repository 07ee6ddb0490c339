"""A tiny DNS server for the tests: answers TXT and A questions for a test zone.

It listens on UDP on 127.0.0.1 (a random port unless one is given) in a
thread, answers from a table of names, says SERVFAIL for the names it is told
to fail and NXDOMAIN for the rest, and records the questions it was asked.
Run as a script (``python -m tests.tcpserver.fakedns IP PORT NAME=TYPE:VALUE...``)
it serves the same way in the foreground.
"""
from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.renderer
import dns.rrset


class FakeDNS:
    """``records`` maps a name to ``{"TXT": [[b"string", ...], ...], "A": ["1.2.3.4"]}``."""

    def __init__(self, records: dict[str, dict[str, list]] | None = None,
                 servfail: set[str] | None = None, ip: str = "127.0.0.1", port: int = 0) -> None:
        self.records = {self._key(k): v for k, v in (records or {}).items()}
        self.servfail = {self._key(k) for k in (servfail or set())}
        self.questions: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.ip, self.port = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _key(name: str) -> str:
        return name.lower().rstrip(".") + "."

    def env(self) -> dict[str, str]:
        """The variables that send our programs' DNS questions here."""
        return {"DNSCACHEIP": self.ip, "DNSCACHEPORT": str(self.port)}

    def answer(self, wire: bytes) -> bytes | None:
        """The response to the query ``wire``, None if it is not a query."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        if not query.question:
            return None
        q = query.question[0]
        name = q.name.to_text().lower()
        rtype = dns.rdatatype.to_text(q.rdtype)
        self.questions.append((name, rtype))
        rcode = dns.rcode.NOERROR
        rrset = None
        if name in self.servfail:
            rcode = dns.rcode.SERVFAIL
        elif name not in self.records:
            rcode = dns.rcode.NXDOMAIN
        else:
            values = self.records[name].get(rtype, [])
            if values:
                rrset = dns.rrset.RRset(q.name, dns.rdataclass.IN, q.rdtype)
                for value in values:
                    if rtype == "TXT":
                        rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, q.rdtype, value)
                    else:
                        rdata = dns.rdata.from_text(dns.rdataclass.IN, q.rdtype, value)
                    rrset.add(rdata, ttl=60)
        # rendered by hand: Message.to_wire shuffles the records, and the tests
        # want to know in which order the TXT strings come
        out = dns.renderer.Renderer(query.id, dns.flags.QR | dns.flags.RA | (query.flags & dns.flags.RD)
                                    | rcode, 65535)
        out.add_question(q.name, q.rdtype, q.rdclass)
        if rrset is not None:
            out.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
        out.write_header()
        return out.get_wire()

    def serve_forever(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(wire)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def start(self) -> "FakeDNS":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()


def _parse(args: list[str]) -> tuple[dict, set]:
    records: dict[str, dict[str, list]] = {}
    servfail: set[str] = set()
    for arg in args:
        name, _, what = arg.partition("=")
        rtype, _, value = what.partition(":")
        if rtype == "SERVFAIL":
            servfail.add(name)
        elif rtype == "TXT":
            records.setdefault(name, {}).setdefault("TXT", []).append(
                [s.encode() for s in value.split("|")])
        else:
            records.setdefault(name, {}).setdefault(rtype, []).append(value)
    return records, servfail


if __name__ == "__main__":
    import sys

    recs, fails = _parse(sys.argv[3:])
    FakeDNS(recs, fails, sys.argv[1], int(sys.argv[2])).serve_forever()
