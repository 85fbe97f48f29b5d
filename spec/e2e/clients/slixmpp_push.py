#!/usr/bin/python3
# Drives slixmpp (Debian python3-slixmpp) against a Parley server for the push e2e spec
# (spec/e2e/push-slixmpp.spec.ts): stream management on, XEP-0357 <enable/> with a publish-options
# form, then the device goes away.
#
#   /usr/bin/python3 slixmpp_push.py --host 127.0.0.1 --port 5222 --jid alice@localhost \
#       --password pw --resource phone --push-jid pubsub.localhost --push-node dev1 enable drop wait
#
# Debian's slixmpp 1.8 has no xep_0357 plugin (upstream added one later), so the <enable/>
# payload is declared here as a slixmpp stanza plugin with a xep_0004 form, the way that
# plugin does, and sent with slixmpp's own Iq.
#
# Actions, in order once bound with stream management enabled: `enable` (push enable; reports
# push_enabled or error), `drop` (kills the connection without closing the stream: the server
# keeps the session hibernating), `quit` (closes the stream: no session left), `wait` (until
# stdin closes). JSON lines on stdout: bound, sm_enabled, push_enabled, dropped, closed, done.
import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys

PUSH = 'urn:xmpp:push:0'
PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options'


def emit(event, **fields):
    try:
        print(json.dumps({'event': event, **fields}), flush=True)
    except (BrokenPipeError, ValueError):
        os._exit(4)


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--mechanism', default='SCRAM-SHA-1')
    p.add_argument('--mode', choices=('starttls',), default='starttls')
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    p.add_argument('--push-jid', required=True)
    p.add_argument('--push-node', required=True)
    p.add_argument('--option', action='append', default=[], help='publish-options field as var=value')
    p.add_argument('actions', nargs='*', choices=('enable', 'drop', 'quit', 'wait'))
    return p.parse_args()


async def run(args):
    from slixmpp import ClientXMPP, Iq
    from slixmpp.xmlstream import ElementBase, register_stanza_plugin
    from slixmpp.plugins.xep_0004 import Form

    class Enable(ElementBase):
        namespace = PUSH
        name = 'enable'
        plugin_attrib = 'push_enable'
        interfaces = {'jid', 'node'}

    register_stanza_plugin(Iq, Enable)
    register_stanza_plugin(Enable, Form)

    jid = args.jid + (f'/{args.resource}' if args.resource else '')
    loop = asyncio.get_running_loop()
    xmpp = ClientXMPP(jid, args.password, sasl_mech=args.mechanism)
    xmpp.loop = loop
    xmpp.register_plugin('xep_0004')
    xmpp.register_plugin('xep_0198')
    ctx = xmpp.ssl_context
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    mechs = xmpp['feature_mechanisms']
    stock_credentials = mechs.sasl_callback

    def credentials_without_binding(required, optional):
        result = stock_credentials(required, optional)
        result.pop('channel_binding', None)
        return result
    mechs.sasl_callback = credentials_without_binding

    ready = loop.create_future()

    def fail(reason, **extra):
        if not ready.done():
            ready.set_exception(RuntimeError(json.dumps({'reason': reason, **extra})))

    def on_start(_e):
        xmpp.send_presence()
        emit('bound', jid=xmpp.boundjid.full)
    xmpp.add_event_handler('session_start', on_start)
    xmpp.add_event_handler('sm_enabled', lambda s: (emit('sm_enabled', resume=s['resume']), ready.done() or ready.set_result(True)))
    xmpp.add_event_handler('failed_all_auth', lambda _e: fail('auth'))
    xmpp.add_event_handler('connection_failed', lambda e: fail('connection', detail=str(e)))
    xmpp.connect((args.host, args.port), force_starttls=True)
    try:
        await ready
    except RuntimeError as err:
        emit('error', stage='login', **json.loads(str(err)))
        return 1

    for action in args.actions:
        if action == 'enable':
            iq = xmpp.make_iq_set()
            iq['push_enable']['jid'] = args.push_jid
            iq['push_enable']['node'] = args.push_node
            form = xmpp['xep_0004'].make_form(ftype='submit')
            form.add_field(var='FORM_TYPE', ftype='hidden', value=PUBLISH_OPTIONS)
            for opt in args.option:
                var, _, value = opt.partition('=')
                form.add_field(var=var, value=value)
            iq['push_enable'].append(form)
            try:
                await iq.send(timeout=10)
            except Exception as err:  # IqError, IqTimeout
                emit('error', stage='enable', detail=str(err))
                return 1
            emit('push_enabled')
        elif action == 'drop':
            gone = loop.create_future()
            xmpp.add_event_handler('disconnected', lambda _e: gone.done() or gone.set_result(True), disposable=True)
            xmpp.abort()
            await gone
            emit('dropped')
        elif action == 'quit':
            await xmpp.disconnect(wait=2)
            emit('closed')
        elif action == 'wait':
            await loop.run_in_executor(None, sys.stdin.read)
    emit('done')
    return 0


def main():
    args = parse_args()
    signal.alarm(int(args.timeout) + 5)
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
        return loop.run_until_complete(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        emit('error', stage='timeout', detail=f'gave up after {args.timeout}s')
        return 2


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    os._exit(code)
