# What the nbxmpp drivers share: a client set up for a Parley test server, the GLib main loop
# with its deadline, a stdin watch and the main that reports a missing package.
import json
import os
import sys

from common import emit, import_error, prepare


class GLibDriver:
    """An nbxmpp Client for --jid/--password/--resource at --host:--port on a GLib main loop that
    ends at finish(code) or after --timeout seconds (exit code 2)."""

    def __init__(self, args, mechanisms, direct_tls=False):
        from gi.repository import GLib
        from nbxmpp.client import Client
        from nbxmpp.const import ConnectionProtocol, ConnectionType

        self.GLib = GLib
        self.args = args
        self.code = None
        self.loop = GLib.MainLoop()
        user, _, domain = args.jid.partition('@')
        self.domain = domain
        c = Client(log_context='driver')
        c.set_domain(domain)
        c.set_username(user)
        c.set_password(args.password)
        if args.resource:
            c.set_resource(args.resource)
        # One address, one way of securing it: no SRV lookup, no fallback to the other mode.
        con_type = ConnectionType.DIRECT_TLS if direct_tls else ConnectionType.START_TLS
        c.set_custom_host(f'{args.host}:{args.port}', ConnectionProtocol.TCP, con_type)
        c.set_mechs(set(mechanisms))
        c.set_sm_disabled(True)
        # A generated self-signed certificate.
        c.set_ignore_tls_errors(True)
        self.client = c

    def run(self):
        self.GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        self.client.connect()
        self.loop.run()
        return self.code if self.code is not None else 1

    def finish(self, code):
        if self.code is None:
            self.code = code
        self.loop.quit()

    def on_timeout(self):
        emit('error', stage='timeout', detail=f'gave up after {self.args.timeout}s')
        self.finish(2)
        return False

    def watch_stdin(self, on_readable):
        """Calls on_readable(channel, condition) whenever stdin has data or closes."""
        channel = self.GLib.IOChannel.unix_new(sys.stdin.fileno())
        self.GLib.io_add_watch(channel, self.GLib.PRIORITY_DEFAULT, self.GLib.IOCondition.IN | self.GLib.IOCondition.HUP,
                               on_readable)

    def report_error(self, stage):
        domain, error, text = self.client.get_error()
        emit('error', stage=stage, domain=str(domain) if domain is not None else None, condition=error, text=text)

    def send_ping(self, callback):
        """A XEP-0199 ping to the server; callback(client, stanza or None on timeout)."""
        from nbxmpp.protocol import Iq
        iq = Iq('get', to=self.domain)
        iq.addChild(name='ping', namespace='urn:xmpp:ping')
        self.client.send_stanza(iq, callback=callback, timeout=5)


class CommandDriver(GLibDriver):
    """Reads one JSON command a line from stdin and runs them one at a time through
    command(c, done); done(**out) prints {"event":"result","tag":…,"cmd":…, **out}. A closed
    stdin queues {"cmd":"disconnect"}."""

    def __init__(self, args, mechanisms, direct_tls=False):
        super().__init__(args, mechanisms, direct_tls)
        self.busy = False
        self.pending = []
        self.buffer = b''

    def read_commands(self):
        self.watch_stdin(self.on_stdin)

    def on_stdin(self, _channel, _condition):
        data = read_stdin()
        if not data:
            self.pending.append({'cmd': 'disconnect'})
            self.next_command()
            return False
        self.buffer += data
        while b'\n' in self.buffer:
            line, self.buffer = self.buffer.split(b'\n', 1)
            if line.strip():
                try:
                    self.pending.append(json.loads(line))
                except ValueError as err:
                    emit('error', stage='command', detail=f'not JSON: {err}')
        self.next_command()
        return True

    def next_command(self):
        if self.busy or not self.pending:
            return
        c = self.pending.pop(0)
        self.busy = True

        def done(**out):
            emit('result', tag=c.get('tag'), cmd=c.get('cmd'), **out)
            self.busy = False
            self.GLib.idle_add(lambda: self.next_command() and False)
        try:
            self.command(c, done)
        except Exception as err:
            emit('error', stage='command', cmd=c.get('cmd'), tag=c.get('tag'), detail=f'{type(err).__name__}: {err}')
            self.busy = False

    def command(self, c, done):
        raise NotImplementedError


def read_stdin():
    """What stdin has now (b'' once it is closed)."""
    return os.read(sys.stdin.fileno(), 65536)


def main(args, make_driver):
    """Builds the driver (after checking the packages import) and runs it; returns the exit code."""
    prepare(args, quiet_otherwise=True)
    try:
        import gi  # noqa: F401
        import nbxmpp  # noqa: F401
    except ImportError as err:
        return import_error(err, 'python3-nbxmpp')
    driver = make_driver()
    if args.debug:
        driver.client.subscribe('stanza-sent', lambda _c, _s, data: print(f'SEND: {data}', file=sys.stderr, flush=True))
        driver.client.subscribe('stanza-received', lambda _c, _s, data: print(f'RECV: {data}', file=sys.stderr, flush=True))
    return driver.run()
