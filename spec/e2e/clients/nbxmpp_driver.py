#!/usr/bin/python3
# Drives nbxmpp (Debian python3-nbxmpp, the library under Gajim) against a Parley server for the
# e2e specs, on a GLib main loop.
#
# Run with the system python, which has the Debian packages and PyGObject:
#   /usr/bin/python3 nbxmpp_driver.py --host 127.0.0.1 --port 5222 --jid alice@localhost \
#       --password pw --mechanism SCRAM-SHA-1 --mode starttls ping send bob@localhost/r hi
#
# Actions run in order once the session is bound: `ping` (XEP-0199 to the server), `send TO
# BODY` (a chat message), `recv` (waits for one message with a body), `wait` (stays online
# until stdin closes). Progress is printed as JSON lines on stdout; --debug logs the wire
# exchange on stderr. The process always ends within --timeout seconds.
#
# nbxmpp 4.2 cannot do SCRAM-*-PLUS: SASL.start_auth() discards every -PLUS mechanism ("needs
# TLS channel binding data, currently not supported via GLib").
import argparse
import json
import logging
import os
import signal
import sys


def emit(event, **fields):
    try:
        print(json.dumps({'event': event, **fields}), flush=True)
    except (BrokenPipeError, ValueError):  # nobody is reading any more: leave
        os._exit(4)


def arm_watchdog(seconds):
    # The last resort, should the event loop itself wedge: SIGALRM's default action ends us.
    signal.alarm(int(seconds) + 5)


def parse_actions(tokens):
    actions = []
    it = iter(tokens)
    for tok in it:
        if tok in ('ping', 'recv', 'wait'):
            actions.append((tok,))
        elif tok == 'send':
            try:
                actions.append(('send', next(it), next(it)))
            except StopIteration:
                raise SystemExit('send needs TO and BODY')
        else:
            raise SystemExit(f'unknown action {tok!r}')
    return actions


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True, help='bare JID; the resource goes in --resource')
    p.add_argument('--password', required=True)
    p.add_argument('--mechanism', required=True, help='the only SASL mechanism nbxmpp may use')
    p.add_argument('--mode', choices=('starttls', 'direct'), required=True)
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=15.0)
    p.add_argument('--debug', action='store_true')
    p.add_argument('actions', nargs='*')
    return p.parse_args()


TLS_VERSIONS = {4: 'TLSv1.2', 5: 'TLSv1.3'}


class Driver:
    def __init__(self, args, actions):
        from gi.repository import GLib
        from nbxmpp.client import Client
        from nbxmpp.const import ConnectionProtocol, ConnectionType
        from nbxmpp.structs import StanzaHandler

        self.GLib = GLib
        self.args = args
        self.actions = list(actions)
        self.code = None
        self.bound = False
        self.closing = False
        self.messages = []
        self.waiting_for_message = False
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
        con_type = ConnectionType.DIRECT_TLS if args.mode == 'direct' else ConnectionType.START_TLS
        c.set_custom_host(f'{args.host}:{args.port}', ConnectionProtocol.TCP, con_type)
        c.set_mechs({args.mechanism})
        c.set_sm_disabled(True)
        # A generated self-signed certificate.
        c.set_ignore_tls_errors(True)
        c.subscribe('connected', self.on_connected)
        c.subscribe('disconnected', self.on_disconnected)
        c.subscribe('connection-failed', self.on_connection_failed)
        c.register_handler(StanzaHandler(name='message', callback=self.on_message))
        self.client = c

    # --- lifecycle -----------------------------------------------------------------------------

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

    def on_connected(self, client, _signal):
        sasl_mech = getattr(getattr(client, '_sasl', None), '_mechanism', None)
        version = client.tls_version
        version_nick = TLS_VERSIONS.get(int(version), str(version)) if version is not None else None
        self.bound = True
        try:  # GIO's TLS connection under nbxmpp's wrapper: what ALPN settled on
            alpn = client._con._con.get_base_io_stream().get_negotiated_protocol()
        except Exception:
            alpn = None
        emit('bound', jid=str(client.get_bound_jid()), mechanism=getattr(sasl_mech, 'name', None),
             tls={'version': version_nick, 'cipher': client.ciphersuite, 'alpn': alpn}, channel_binding=None)
        self.next_action()

    def on_disconnected(self, client, _signal):
        if self.closing:
            emit('done')
            self.finish(0)
            return
        domain, error, text = client.get_error()
        emit('error', stage='session' if self.bound else 'login',
             domain=str(domain) if domain is not None else None, condition=error, text=text)
        self.finish(1)

    def on_connection_failed(self, client, _signal):
        domain, error, text = client.get_error()
        emit('error', stage='connect', domain=str(domain) if domain is not None else None,
             condition=error, text=text)
        self.finish(1)

    # --- actions -------------------------------------------------------------------------------

    def next_action(self):
        if not self.actions:
            self.closing = True
            self.client.disconnect()
            return
        action = self.actions.pop(0)
        if action[0] == 'ping':
            self.ping(lambda stanza: emit('pong', type=stanza.getType(), **{'from': str(stanza.getFrom())}))
        elif action[0] == 'send':
            from nbxmpp.protocol import Message
            msg = Message(to=action[1], body=action[2], typ='chat')
            msg.setID(os.urandom(6).hex())
            self.client.send_stanza(msg)
            # A round trip, so the message is through the server before we go on.
            self.ping(lambda _s: emit('sent', id=msg.getID(), to=action[1]))
        elif action[0] == 'recv':
            self.waiting_for_message = True
            self.deliver_message()
        elif action[0] == 'wait':
            channel = self.GLib.IOChannel.unix_new(sys.stdin.fileno())
            self.GLib.io_add_watch(channel, self.GLib.PRIORITY_DEFAULT, self.GLib.IOCondition.IN | self.GLib.IOCondition.HUP,
                                   self.on_stdin)

    def on_stdin(self, _channel, _condition):
        if not os.read(sys.stdin.fileno(), 4096):
            self.next_action()
            return False
        return True

    def ping(self, on_result):
        from nbxmpp.namespaces import Namespace
        from nbxmpp.protocol import Iq
        iq = Iq('get', to=self.domain)
        iq.addChild(name='ping', namespace=Namespace.PING)

        def on_response(_client, stanza):
            if stanza is None:
                emit('error', stage='ping', condition='timeout')
                self.closing = True
                self.code = 1
                self.client.disconnect()
                return
            if stanza.getType() != 'result':
                emit('error', stage='ping', condition=stanza.getError(), type=stanza.getType())
                self.closing = True
                self.code = 1
                self.client.disconnect()
                return
            on_result(stanza)
            self.next_action()
        self.client.send_stanza(iq, callback=on_response, timeout=5)

    def on_message(self, _client, stanza, _properties):
        if stanza.getBody():
            self.messages.append(stanza)
            self.deliver_message()

    def deliver_message(self):
        if self.waiting_for_message and self.messages:
            self.waiting_for_message = False
            m = self.messages.pop(0)
            emit('message', body=m.getBody(), type=m.getType(), id=m.getID(),
                 **{'from': str(m.getFrom()), 'to': str(m.getTo())})
            self.next_action()


def main():
    args = parse_args()
    actions = parse_actions(args.actions)
    arm_watchdog(args.timeout)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format='%(asctime)s %(name)s %(levelname)s %(message)s')
    else:
        logging.basicConfig(level=logging.CRITICAL)
    try:
        import gi  # noqa: F401
        import nbxmpp  # noqa: F401
    except ImportError as err:
        emit('error', stage='import', detail=str(err),
             hint='apt-get install python3-nbxmpp and run with /usr/bin/python3')
        return 3
    driver = Driver(args, actions)
    if args.debug:
        driver.client.subscribe('stanza-sent', lambda _c, _s, data: print(f'SEND: {data}', file=sys.stderr, flush=True))
        driver.client.subscribe('stanza-received', lambda _c, _s, data: print(f'RECV: {data}', file=sys.stderr, flush=True))
    return driver.run()


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
