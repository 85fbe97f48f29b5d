#!/usr/bin/python3
# An interactive slixmpp (Debian python3-slixmpp) session for the PEP e2e specs, driving slixmpp's
# own XEP-0060 (pubsub), XEP-0163 (PEP, +notify interests through XEP-0115 caps), XEP-0084
# (avatars) and XEP-0048 (bookmarks over XEP-0049 private XML or XEP-0223 PEP) plugins.
#
#   /usr/bin/python3 slixmpp_pep.py --host 127.0.0.1 --port 5222 --jid sam@localhost \
#       --password pw --resource sli [--timeout 45] [--debug]
#
# It logs in (STARTTLS, SCRAM-SHA-256), prints {"event":"bound",...}, then reads one JSON
# command a line on stdin, each answered by {"event":"result","tag":…,"cmd":…,…}:
#
#   {"cmd":"interest","nodes":[N…]}         XEP-0163 add_interest (N+notify in caps), then presence
#   {"cmd":"presence"}                       available presence (with the current caps)
#   {"cmd":"publish","node":N,"id":I,"payload":XML[,"options":{var: value}]}
#                                            XEP-0060 publish, with publish-options (XEP-0004 form)
#   {"cmd":"items","jid":J,"node":N}         XEP-0060 get_items → items: [{id, xml}]
#   {"cmd":"bookmarks_get","method":"xep_0049"|"xep_0223"}  XEP-0048 → conferences: [{jid,name,autojoin,nick}]
#   {"cmd":"bookmarks_set","method":M,"conferences":[{jid,name,autojoin,nick}]}
#   {"cmd":"disconnect"}
#
# Subscription requests are approved and answered with a subscription of our own (slixmpp's
# auto_authorize / auto_subscribe). Pubsub events are printed as they come, from slixmpp's
# XEP-0060 plugin: {"event":"pubsub_publish","from","node","id","xml"} and
# {"event":"pubsub_retract","from","node","id"}. IQ errors come back as
# {"type":"error","error":{"condition","app":[…]}}.
import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import xml.etree.ElementTree as ET

NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


def emit(event, **fields):
    try:
        print(json.dumps({'event': event, **fields}), flush=True)
    except (BrokenPipeError, ValueError):  # nobody is reading any more: leave
        os._exit(4)


def error_of(iq):
    err = iq.xml.find('{jabber:client}error')
    if err is None:
        return None
    condition, app = None, []
    for child in err:
        ns, name = child.tag[1:].split('}', 1) if child.tag.startswith('{') else (None, child.tag)
        if ns == NS_STANZAS and name != 'text':
            condition = name
        elif ns != NS_STANZAS:
            app.append({'name': name, 'ns': ns})
    return {'type': err.get('type'), 'condition': condition, 'app': app}


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True, help='bare JID; the resource goes in --resource')
    p.add_argument('--password', required=True)
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=45.0)
    p.add_argument('--debug', action='store_true')
    return p.parse_args()


async def run(args):
    # Imported here so that a missing package is reported as a JSON error line.
    from slixmpp import ClientXMPP, JID
    from slixmpp.exceptions import IqError, IqTimeout

    jid = args.jid + (f'/{args.resource}' if args.resource else '')
    loop = asyncio.get_running_loop()
    xmpp = ClientXMPP(jid, args.password, sasl_mech='SCRAM-SHA-256')
    xmpp.loop = loop
    xmpp.auto_authorize = True
    xmpp.auto_subscribe = True
    for plugin in ('xep_0030', 'xep_0004', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0084', 'xep_0048', 'xep_0199'):
        xmpp.register_plugin(plugin)
    ctx = xmpp.ssl_context  # a generated self-signed certificate: no verification
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # As in slixmpp_driver.py: decline channel binding, so a non-PLUS SCRAM sends GS2 flag 'n'.
    mechs = xmpp['feature_mechanisms']
    stock_credentials = mechs.sasl_callback

    def credentials_without_binding(required, optional):
        result = stock_credentials(required, optional)
        result.pop('channel_binding', None)
        return result
    mechs.sasl_callback = credentials_without_binding

    def on_publish(msg):
        item = msg['pubsub_event']['items']['item']
        payload = item.xml[0] if len(item.xml) else None
        emit('pubsub_publish', **{'from': msg['from'].full, 'node': msg['pubsub_event']['items']['node'],
                                  'id': item['id'], 'xml': None if payload is None else ET.tostring(payload, encoding='unicode')})

    def on_retract(msg):
        emit('pubsub_retract', **{'from': msg['from'].full, 'node': msg['pubsub_event']['items']['node'],
                                  'id': msg['pubsub_event']['items']['retract']['id']})
    xmpp.add_event_handler('pubsub_publish', on_publish)
    xmpp.add_event_handler('pubsub_retract', on_retract)

    session = loop.create_future()
    closed = loop.create_future()

    def fail(reason, **extra):
        if not session.done():
            session.set_exception(RuntimeError(json.dumps({'reason': reason, **extra})))

    def on_disconnected(e):
        fail('disconnected', detail=str(e))
        if not closed.done():
            closed.set_result(str(e))
    xmpp.add_event_handler('session_start', lambda _e: session.done() or session.set_result(True))
    xmpp.add_event_handler('failed_all_auth', lambda _e: fail('auth'))
    xmpp.add_event_handler('connection_failed', lambda e: fail('connection', detail=str(e)))
    xmpp.add_event_handler('disconnected', on_disconnected)

    xmpp.connect((args.host, args.port), use_ssl=False, force_starttls=True)
    try:
        await session
    except RuntimeError as err:
        emit('error', stage='login', **json.loads(str(err)))
        try:
            xmpp.abort()
        except Exception:
            pass
        return 1
    # The roster first (RFC 6121 §2.1.6), so that the server pushes and presence flow.
    await xmpp.get_roster()
    emit('bound', jid=xmpp.boundjid.full)

    async def barrier():
        await xmpp['xep_0199'].send_ping(xmpp.boundjid.domain, timeout=5)

    def outcome(iq):
        out = {'type': iq['type']}
        if iq['type'] == 'error':
            out['error'] = error_of(iq)
        return out

    async def command(c):
        name = c.get('cmd')
        if name == 'interest':
            for node in c['nodes']:
                xmpp['xep_0163'].add_interest(node)
            # add_interest recomputes the caps ver in the background; wait for it, then announce it.
            await xmpp['xep_0115'].update_caps(broadcast=False)
            xmpp.send_presence()
            await barrier()
            return {'ver': await xmpp['xep_0115'].get_verstring(xmpp.boundjid)}
        if name == 'presence':
            xmpp.send_presence()
            await barrier()
            return {}
        if name == 'publish':
            form = None
            if c.get('options'):
                form = xmpp['xep_0004'].make_form(ftype='submit')
                form.add_field(var='FORM_TYPE', ftype='hidden', value='http://jabber.org/protocol/pubsub#publish-options')
                for var, value in c['options'].items():
                    form.add_field(var=var, value=value)
            try:
                reply = await xmpp['xep_0060'].publish(None, c['node'], id=c.get('id'), payload=ET.fromstring(c['payload']), options=form, timeout=8)
            except IqError as err:
                return outcome(err.iq)
            out = outcome(reply)
            out['id'] = reply['pubsub']['publish']['item']['id']
            return out
        if name == 'items':
            try:
                reply = await xmpp['xep_0060'].get_items(JID(c['jid']), c['node'], timeout=8)
            except IqError as err:
                return outcome(err.iq)
            out = outcome(reply)
            out['items'] = [{'id': it['id'], 'xml': ET.tostring(it.xml[0], encoding='unicode') if len(it.xml) else None}
                            for it in reply['pubsub']['items']]
            return out
        if name == 'bookmarks_get':
            try:
                reply = await xmpp['xep_0048'].get_bookmarks(method=c['method'], timeout=8)
            except IqError as err:
                return outcome(err.iq)
            out = outcome(reply)
            if c['method'] == 'xep_0049':
                storage = reply['private']['bookmarks']
            else:
                storage = reply['pubsub']['items']['item']['bookmarks']
            confs = []
            for conf in storage.xml.findall('{storage:bookmarks}conference'):
                nick = conf.find('{storage:bookmarks}nick')
                confs.append({'jid': conf.get('jid'), 'name': conf.get('name'), 'autojoin': conf.get('autojoin'),
                              'nick': None if nick is None else nick.text})
            out['conferences'] = confs
            return out
        if name == 'bookmarks_set':
            from slixmpp.plugins.xep_0048 import Bookmarks
            bm = Bookmarks()
            for conf in c['conferences']:
                bm.add_conference(conf['jid'], conf.get('nick') or '', name=conf.get('name') or '',
                                  autojoin=bool(conf.get('autojoin')))
            try:
                reply = await xmpp['xep_0048'].set_bookmarks(bm, method=c['method'], timeout=8)
            except IqError as err:
                return outcome(err.iq)
            return outcome(reply)
        raise ValueError(f'unknown command {name!r}')

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


def main():
    args = parse_args()
    # The last resort, should the event loop itself wedge: SIGALRM's default action ends us.
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
