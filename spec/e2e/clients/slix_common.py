# What the slixmpp drivers share: a client set up for a Parley test server, the login with its
# failure report, the JSON command loop on stdin and the asyncio main.
import asyncio
import json
import ssl
import sys

from common import emit, import_error, prepare


def full_jid(args):
    return args.jid + (f'/{args.resource}' if args.resource else '')


def make_client(args, mechanism, plugins=()):
    """A ClientXMPP on the running loop, trusting the test server's self-signed certificate."""
    from slixmpp import ClientXMPP
    xmpp = ClientXMPP(full_jid(args), args.password, sasl_mech=mechanism)
    xmpp.loop = asyncio.get_running_loop()
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    ctx = xmpp.ssl_context  # a generated self-signed certificate: no verification
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return xmpp


def decline_channel_binding(xmpp):
    # slixmpp asks for the channel binding data with every SCRAM mechanism and, when it gets
    # some but was told to use a non-PLUS one, sends GS2 flag 'y' ("I could bind, I think
    # you cannot"); the server offers -PLUS, so that is a downgrade and is refused. Through
    # the plugin's own sasl_callback hook, decline channel binding: flag 'n'.
    mechs = xmpp['feature_mechanisms']
    stock_credentials = mechs.sasl_callback

    def credentials_without_binding(required, optional):
        result = stock_credentials(required, optional)
        result.pop('channel_binding', None)
        return result
    mechs.sasl_callback = credentials_without_binding


class Login:
    """Connects and waits for session_start. `closed` resolves (with the reason) when the
    connection goes, at any time after. With `report_auth`, failures carry the SASL conditions
    and a stream error ends the login attempt."""

    def __init__(self, xmpp, report_auth=False):
        loop = asyncio.get_running_loop()
        self.xmpp = xmpp
        self.session = loop.create_future()
        self.closed = loop.create_future()
        self.auth_failures = []
        xmpp.add_event_handler('session_start', lambda _e: self.session.done() or self.session.set_result(True))
        xmpp.add_event_handler('connection_failed', lambda e: self.fail('connection', detail=str(e)))
        xmpp.add_event_handler('disconnected', self.on_disconnected)
        if report_auth:
            self.report_auth = True
            xmpp.add_event_handler('failed_auth', lambda s: self.auth_failures.append(s['condition']))
            xmpp.add_event_handler('failed_all_auth', lambda _e: self.fail('auth', conditions=self.auth_failures))
            xmpp.add_event_handler('stream_error', lambda s: self.fail('stream-error', condition=s['condition'], text=s['text']))
        else:
            self.report_auth = False
            xmpp.add_event_handler('failed_all_auth', lambda _e: self.fail('auth'))

    def fail(self, reason, **extra):
        if not self.session.done():
            self.session.set_exception(RuntimeError(json.dumps({'reason': reason, **extra})))

    def on_disconnected(self, e):
        if self.report_auth:
            self.fail('disconnected', detail=str(e), conditions=self.auth_failures)
        else:
            self.fail('disconnected', detail=str(e))
        if not self.closed.done():
            self.closed.set_result(str(e))

    async def run(self, host, port, use_ssl=False, force_starttls=True):
        """True once the session has started; otherwise reports {"event":"error","stage":"login"}."""
        self.xmpp.connect((host, port), use_ssl=use_ssl, force_starttls=force_starttls)
        try:
            await self.session
            return True
        except RuntimeError as err:
            emit('error', stage='login', **json.loads(str(err)))
            try:
                self.xmpp.abort()
            except Exception:  # already torn down by the server closing the stream
                pass
            return False


async def serve_commands(xmpp, closed, command, before_disconnect=None):
    """Reads one JSON command a line from stdin, in order, and answers each with
    {"event":"result","tag":…,"cmd":…, **(await command(c))}. Ends at {"cmd":"disconnect"}, when
    stdin closes or when the server closes the stream ({"event":"disconnected"}); returns the
    exit code (1 when a command failed in the driver itself)."""
    from slixmpp.exceptions import IqTimeout
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    code = 0
    while True:
        line_task = asyncio.ensure_future(reader.readline())
        await asyncio.wait({line_task, closed}, return_when=asyncio.FIRST_COMPLETED)
        if closed.done():
            line_task.cancel()
            emit('disconnected', detail=closed.result())
            return code
        line = line_task.result()
        if not line:
            break  # stdin closed: leave cleanly
        line = line.strip()
        if not line:
            continue
        try:
            c = json.loads(line)
        except ValueError as err:
            emit('error', stage='command', detail=f'not JSON: {err}')
            continue
        tag, name = c.get('tag'), c.get('cmd')
        if name == 'disconnect':
            if before_disconnect is not None:
                before_disconnect(c)
            await xmpp.disconnect(wait=2)
            emit('result', tag=tag, cmd=name)
            emit('disconnected', detail='requested')
            return code
        try:
            out = await command(c)
            emit('result', tag=tag, cmd=name, **out)
        except IqTimeout:
            emit('result', tag=tag, cmd=name, type='timeout')
        except Exception as err:  # a driver bug: report it, keep the session
            emit('error', stage='command', cmd=name, tag=tag, detail=f'{type(err).__name__}: {err}')
            code = 1

    await xmpp.disconnect(wait=2)
    emit('disconnected', detail='stdin closed')
    return code


def main(args, run):
    """Runs `await run(args)` on a fresh loop within --timeout seconds; returns the exit code."""
    prepare(args)
    try:
        import slixmpp  # noqa: F401
    except ImportError as err:
        return import_error(err, 'python3-slixmpp')
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        emit('error', stage='timeout', detail=f'gave up after {args.timeout}s')
        return 2
