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
import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
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
    p.add_argument('--mechanism', required=True, help="the only SASL mechanism slixmpp may use; 'auto' lets slixmpp choose")
    p.add_argument('--mode', choices=('starttls', 'direct'), required=True)
    p.add_argument('--resource')
    p.add_argument('--tls-max', choices=('1.2', '1.3'), help='highest TLS version to offer')
    p.add_argument('--stock-cb-flag', action='store_true',
                   help="keep slixmpp's own GS2 flag with a non-PLUS SCRAM: 'y' whenever TLS gives it "
                        "binding data, which a server offering -PLUS must refuse (RFC 5802 §6)")
    p.add_argument('--timeout', type=float, default=15.0)
    p.add_argument('--debug', action='store_true')
    p.add_argument('actions', nargs='*')
    return p.parse_args()


async def run(args, actions):
    # Imported here so that a missing package is reported as a JSON error line.
    from slixmpp import ClientXMPP
    from slixmpp.exceptions import IqError, IqTimeout

    jid = args.jid + (f'/{args.resource}' if args.resource else '')
    loop = asyncio.get_running_loop()
    auto = args.mechanism == 'auto'
    xmpp = ClientXMPP(jid, args.password, sasl_mech=None if auto else args.mechanism)
    xmpp.loop = loop
    xmpp.register_plugin('xep_0199')  # XEP-0199 ping
    # A generated self-signed certificate: no verification.
    ctx = xmpp.ssl_context
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if args.tls_max == '1.2':
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.mode == 'direct':
        ctx.set_alpn_protocols(['xmpp-client'])  # XEP-0368
    if not auto and not args.mechanism.endswith('-PLUS') and not args.stock_cb_flag:
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

    session = loop.create_future()
    messages: asyncio.Queue = asyncio.Queue()
    auth_failures = []

    def fail(reason, **extra):
        if not session.done():
            session.set_exception(RuntimeError(json.dumps({'reason': reason, **extra})))

    xmpp.add_event_handler('session_start', lambda _e: session.done() or session.set_result(True))
    xmpp.add_event_handler('failed_auth', lambda s: auth_failures.append(s['condition']))
    xmpp.add_event_handler('failed_all_auth', lambda _e: fail('auth', conditions=auth_failures))
    xmpp.add_event_handler('connection_failed', lambda e: fail('connection', detail=str(e)))
    xmpp.add_event_handler('disconnected', lambda e: fail('disconnected', detail=str(e), conditions=auth_failures))
    xmpp.add_event_handler('stream_error', lambda s: fail('stream-error', condition=s['condition'], text=s['text']))

    def on_message(msg):
        if msg['body']:
            messages.put_nowait(msg)
    xmpp.add_event_handler('message', on_message)

    xmpp.connect((args.host, args.port), use_ssl=args.mode == 'direct', force_starttls=args.mode == 'starttls')
    try:
        await session
    except RuntimeError as err:
        emit('error', stage='login', **json.loads(str(err)))
        try:
            xmpp.abort()
        except Exception:  # already torn down by the server closing the stream
            pass
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
    actions = parse_actions(args.actions)
    arm_watchdog(args.timeout)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format='%(asctime)s %(name)s %(levelname)s %(message)s')
    try:
        import slixmpp  # noqa: F401
    except ImportError as err:
        emit('error', stage='import', detail=str(err),
             hint='apt-get install python3-slixmpp and run with /usr/bin/python3')
        return 3
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(asyncio.wait_for(run(args, actions), args.timeout))
    except asyncio.TimeoutError:
        emit('error', stage='timeout', detail=f'gave up after {args.timeout}s')
        return 2


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    # Skip interpreter teardown of the loop and its transports; nothing is left to flush.
    os._exit(code)
