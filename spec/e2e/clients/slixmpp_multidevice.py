#!/usr/bin/python3
# An interactive slixmpp (Debian python3-slixmpp) session for the multi-device e2e specs: Message
# Carbons through slixmpp's xep_0280 plugin, archive paging through its xep_0313 plugin.
#
#   /usr/bin/python3 slixmpp_multidevice.py --host 127.0.0.1 --port 5222 --jid sam@localhost \
#       --password pw --resource sli [--timeout 60] [--debug]
#
# Same JSON-lines protocol as slixmpp_im.py / nbxmpp_muc.py: {"event":"bound",...}, then one
# JSON command a line on stdin, each answered by {"event":"result","tag":…,"cmd":…,…}:
#
#   {"cmd":"presence"[,"priority":N]}                 available presence, then a ping barrier
#   {"cmd":"carbons"}                                 xep_0280 enable()
#   {"cmd":"send","to":J,"body":B,"id":I[,"type"]}    a message, then a ping barrier
#   {"cmd":"mam"[,"with":J][,"after":A][,"before":B][,"max":N]}   xep_0313 retrieve(), one page:
#        {type, ids:[archive ids], msg_ids:[forwarded message ids], bodies, complete, first, last, count}
#   {"cmd":"ping"} {"cmd":"disconnect"}
#
# Every message from the server is printed as it arrives, before slixmpp handles it, read from
# the XML: {"event":"message",from,to,id,type,body,carbon:null|"sent"|"received",
# inner:{from,to,id,type,body}|null, raw}.
import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import xml.etree.ElementTree as ET

NS_CLIENT = 'jabber:client'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


def emit(event, **fields):
    try:
        print(json.dumps({'event': event, **fields}), flush=True)
    except (BrokenPipeError, ValueError):
        os._exit(4)


def q(ns, name):
    return '{%s}%s' % (ns, name)


def body_of(el):
    b = el.find(q(NS_CLIENT, 'body'))
    return None if b is None else (b.text or '')


def plain(el):
    return {'from': el.get('from'), 'to': el.get('to'), 'id': el.get('id'),
            'type': el.get('type') or 'normal', 'body': body_of(el)}


def describe_message(el):
    carbon, inner = None, None
    for kind in ('sent', 'received'):
        c = el.find(q(NS_CARBONS, kind))
        if c is not None:
            carbon = kind
            fwd = c.find(q(NS_FORWARD, 'forwarded'))
            m = None if fwd is None else fwd.find(q(NS_CLIENT, 'message'))
            inner = None if m is None else plain(m)
    return {**plain(el), 'carbon': carbon, 'inner': inner, 'raw': ET.tostring(el, encoding='unicode')}


def error_of(el):
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        return None
    cond = None
    for child in err:
        if child.tag.startswith('{%s}' % NS_STANZAS) and not child.tag.endswith('}text'):
            cond = child.tag.split('}', 1)[1]
    return {'type': err.get('type'), 'condition': cond}


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=60.0)
    p.add_argument('--debug', action='store_true')
    return p.parse_args()


async def run(args):
    from slixmpp import ClientXMPP, JID
    from slixmpp.exceptions import IqError, IqTimeout

    jid = args.jid + (f'/{args.resource}' if args.resource else '')
    loop = asyncio.get_running_loop()
    xmpp = ClientXMPP(jid, args.password, sasl_mech='SCRAM-SHA-256')
    xmpp.loop = loop
    for plugin in ('xep_0199', 'xep_0059', 'xep_0280', 'xep_0313'):
        xmpp.register_plugin(plugin)
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

    def report_incoming(stanza):
        try:
            el = stanza.xml
            if el.tag == q(NS_CLIENT, 'message') and el.find(q(NS_MAM, 'result')) is None:
                emit('message', **describe_message(el))
        except Exception as err:
            emit('unparsed', detail=str(err))
        return stanza
    xmpp.add_filter('in', report_incoming, order=0)

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
        return 1
    emit('bound', jid=xmpp.boundjid.full)

    async def barrier():
        await xmpp['xep_0199'].send_ping(xmpp.boundjid.domain, timeout=5)

    async def command(c):
        name = c.get('cmd')
        if name == 'presence':
            p = xmpp.Presence()
            if c.get('priority') is not None:
                p['priority'] = c['priority']
            p.send()
            await barrier()
            return {}
        if name == 'carbons':
            try:
                reply = await xmpp['xep_0280'].enable(timeout=8)
            except IqError as err:
                reply = err.iq
            return {'type': reply['type'], 'error': error_of(reply.xml)}
        if name == 'send':
            msg = xmpp.make_message(mto=c['to'], mbody=c['body'], mtype=c.get('type', 'chat'))
            msg['id'] = c['id']
            msg.send()
            await barrier()
            return {'id': c['id']}
        if name == 'ping':
            await barrier()
            return {}
        if name == 'mam':
            rsm = {'max': c.get('max', 10)}
            for key in ('after', 'before'):
                if key in c:
                    rsm[key] = c[key]
            with_jid = JID(c['with']) if c.get('with') else None
            try:
                reply = await xmpp['xep_0313'].retrieve(with_jid=with_jid, rsm=rsm, timeout=10)
            except IqError as err:
                return {'type': 'error', 'error': error_of(err.iq.xml)}
            ids, msg_ids, bodies = [], [], []
            for r in reply['mam']['results']:
                res = r.xml.find(q(NS_MAM, 'result'))
                fwd = res.find(q(NS_FORWARD, 'forwarded'))
                m = fwd.find(q(NS_CLIENT, 'message'))
                ids.append(res.get('id'))
                msg_ids.append(m.get('id'))
                bodies.append(body_of(m))
            fin = reply['mam_fin']
            set_ = fin['rsm']
            count = set_['count']
            return {'type': reply['type'], 'ids': ids, 'msg_ids': msg_ids, 'bodies': bodies,
                    'complete': fin.xml.get('complete') in ('true', '1'),
                    'first': set_['first'] or None, 'last': set_['last'] or None,
                    'count': int(count) if count not in (None, '') else None}
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
            break
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
        except Exception as err:
            emit('error', stage='command', cmd=name, tag=tag, detail=f'{type(err).__name__}: {err}')
            code = 1
    await xmpp.disconnect(wait=2)
    emit('disconnected', detail='stdin closed')
    return code


def main():
    args = parse_args()
    signal.alarm(int(args.timeout) + 5)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format='%(asctime)s %(name)s %(levelname)s %(message)s')
    try:
        import slixmpp  # noqa: F401
    except ImportError as err:
        emit('error', stage='import', detail=str(err), hint='apt-get install python3-slixmpp and run with /usr/bin/python3')
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
