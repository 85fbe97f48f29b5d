#!/usr/bin/python3
# Drives slixmpp (Debian python3-slixmpp) against a Parley server for the e2e specs.
#
# Run with the system python, which has the Debian packages:
#   /usr/bin/python3 slixmpp_driver.py --host 127.0.0.1 --port 5222 --jid alice@localhost \
#       --password pw --mechanism SCRAM-SHA-1 --mode starttls ping send bob@localhost/r hi
#
# Actions run in order once the session is bound: `ping` (XEP-0199 to the server), `send TO
# BODY` (a chat message), `recv` (waits for one message with a body), `wait` (stays online
# until stdin closes). Progress is printed as JSON lines on stdout; --debug logs the wire
# exchange on stderr. The process always ends within --timeout seconds.
import asyncio
import os
import ssl
import sys

import slix_common
from common import base_arguments, emit, exit_with, parse_actions


def send_arguments(it):
    try:
        return (next(it), next(it))
    except StopIteration:
        raise SystemExit('send needs TO and BODY')


def parse_args():
    p = base_arguments(timeout=15.0)
    p.add_argument('--mechanism', required=True, help="the only SASL mechanism slixmpp may use; 'auto' lets slixmpp choose")
    p.add_argument('--mode', choices=('starttls', 'direct'), required=True)
    p.add_argument('--tls-max', choices=('1.2', '1.3'), help='highest TLS version to offer')
    p.add_argument('--stock-cb-flag', action='store_true',
                   help="keep slixmpp's own GS2 flag with a non-PLUS SCRAM: 'y' whenever TLS gives it "
                        "binding data, which a server offering -PLUS must refuse (RFC 5802 §6)")
    p.add_argument('actions', nargs='*')
    return p.parse_args()


async def run(args, actions):
    # Imported here so that a missing package is reported as a JSON error line.
    from slixmpp.exceptions import IqError, IqTimeout

    loop = asyncio.get_running_loop()
    auto = args.mechanism == 'auto'
    xmpp = slix_common.make_client(args, None if auto else args.mechanism, plugins=('xep_0199',))  # XEP-0199 ping
    ctx = xmpp.ssl_context
    if args.tls_max == '1.2':
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.mode == 'direct':
        ctx.set_alpn_protocols(['xmpp-client'])  # XEP-0368
    if not auto and not args.mechanism.endswith('-PLUS') and not args.stock_cb_flag:
        slix_common.decline_channel_binding(xmpp)

    login = slix_common.Login(xmpp, report_auth=True)
    messages: asyncio.Queue = asyncio.Queue()

    def on_message(msg):
        if msg['body']:
            messages.put_nowait(msg)
    xmpp.add_event_handler('message', on_message)

    if not await login.run(args.host, args.port, use_ssl=args.mode == 'direct', force_starttls=args.mode == 'starttls'):
        return 1

    mech = xmpp['feature_mechanisms'].mech
    sock = xmpp.socket
    tls = None
    if isinstance(sock, (ssl.SSLObject, ssl.SSLSocket)):
        tls = {'version': sock.version(), 'cipher': sock.cipher()[0], 'alpn': sock.selected_alpn_protocol()}
    gs2 = getattr(mech, 'gs2_header', None)
    emit('bound', jid=xmpp.boundjid.full, mechanism=mech.name, tls=tls,
         channel_binding='tls-unique' if mech.name.endswith('-PLUS') else None,
         gs2_header=gs2.decode() if isinstance(gs2, bytes) else None)

    code = 0
    for action in actions:
        try:
            if action[0] == 'ping':
                iq = await xmpp['xep_0199'].send_ping(xmpp.boundjid.domain, timeout=5)
                emit('pong', type=iq['type'], **{'from': iq['from'].full})
            elif action[0] == 'send':
                msg = xmpp.make_message(mto=action[1], mbody=action[2], mtype='chat')
                msg['id'] = os.urandom(6).hex()
                msg.send()
                # A round trip, so the message is through the server before we go on.
                await xmpp['xep_0199'].send_ping(xmpp.boundjid.domain, timeout=5)
                emit('sent', id=msg['id'], to=action[1])
            elif action[0] == 'recv':
                msg = await messages.get()
                emit('message', body=msg['body'], type=msg['type'], id=msg['id'],
                     **{'from': msg['from'].full, 'to': msg['to'].full})
            elif action[0] == 'wait':
                await loop.run_in_executor(None, sys.stdin.read)
        except IqError as err:
            emit('error', stage=action[0], condition=err.iq['error']['condition'], type=err.iq['type'])
            code = 1
            break
        except IqTimeout:
            emit('error', stage=action[0], condition='timeout')
            code = 1
            break

    await xmpp.disconnect(wait=1)
    emit('done')
    return code


def main():
    args = parse_args()
    actions = parse_actions(args.actions, ('ping', 'recv', 'wait'), {'send': send_arguments})
    return slix_common.main(args, lambda a: run(a, actions))


if __name__ == '__main__':
    exit_with(main())
