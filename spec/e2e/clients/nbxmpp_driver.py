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
import os

import nbxmpp_common
from common import base_arguments, emit, exit_with, parse_actions


def send_arguments(it):
    try:
        return (next(it), next(it))
    except StopIteration:
        raise SystemExit('send needs TO and BODY')


def parse_args():
    p = base_arguments(timeout=15.0)
    p.add_argument('--mechanism', required=True, help='the only SASL mechanism nbxmpp may use')
    p.add_argument('--mode', choices=('starttls', 'direct'), required=True)
    p.add_argument('actions', nargs='*')
    return p.parse_args()


TLS_VERSIONS = {4: 'TLSv1.2', 5: 'TLSv1.3'}


class Driver(nbxmpp_common.GLibDriver):
    def __init__(self, args, actions):
        from nbxmpp.structs import StanzaHandler

        super().__init__(args, {args.mechanism}, direct_tls=args.mode == 'direct')
        self.actions = list(actions)
        self.bound = False
        self.closing = False
        self.messages = []
        self.waiting_for_message = False
        c = self.client
        c.subscribe('connected', self.on_connected)
        c.subscribe('disconnected', self.on_disconnected)
        c.subscribe('connection-failed', self.on_connection_failed)
        c.register_handler(StanzaHandler(name='message', callback=self.on_message))

    # --- lifecycle -----------------------------------------------------------------------------

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
        self.report_error('session' if self.bound else 'login')
        self.finish(1)

    def on_connection_failed(self, client, _signal):
        self.report_error('connect')
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
            self.watch_stdin(self.on_stdin)

    def on_stdin(self, _channel, _condition):
        if not nbxmpp_common.read_stdin():
            self.next_action()
            return False
        return True

    def ping(self, on_result):
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
        self.send_ping(on_response)

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
    actions = parse_actions(args.actions, ('ping', 'recv', 'wait'), {'send': send_arguments})
    return nbxmpp_common.main(args, lambda: Driver(args, actions))


if __name__ == '__main__':
    exit_with(main())
