#!/usr/bin/python3
# An interactive slixmpp (Debian python3-slixmpp) session for the MUC e2e specs, driving slixmpp's
# own XEP-0045, XEP-0313 and XEP-0425 plugins.
#
#   /usr/bin/python3 slixmpp_muc.py --host 127.0.0.1 --port 5222 --jid sam@localhost \
#       --password pw --resource sli [--timeout 60] [--debug]
#
# It logs in (STARTTLS, SCRAM-SHA-256), prints {"event":"bound",...}, then reads one JSON command a
# line on stdin, each answered by {"event":"result","tag":…,"cmd":…,…}:
#
#   {"cmd":"join","room":R,"nick":N[,"password","maxstanzas"]}  xep_0045.join_muc_wait
#       → type 'joined' with codes, item, occupant_id, occupants, history [{body,from,stanza_id}], subject;
#         or type 'error' with error {type,condition,text}
#   {"cmd":"configure","room":R,"fields":{var: value|[values]}}  get_room_config, fill, set_room_config
#   {"cmd":"say","room":R,"body":B}            groupchat; the result waits for the room's echo: id, stanza_id
#   {"cmd":"pm","room":R,"nick":N,"body":B}    a private message (type chat, <x xmlns=muc#user/>)
#   {"cmd":"kick","room":R,"nick":N[,"reason"]}  set_role none
#   {"cmd":"affiliation","room":R,"jid":J,"affiliation":A[,"reason"]}  set_affiliation (ban: outcast)
#   {"cmd":"subject","room":R,"subject":S}     xep_0045.set_subject; the result waits for the room's echo: stanza_id
#   {"cmd":"mam","room":R,"max":M[,"after","before"]}  xep_0313.retrieve: ids, bodies, subjects, complete, first, last, count
#   {"cmd":"moderate","room":R,"id":ID[,"reason"]}  xep_0425.moderate
#   {"cmd":"leave","room":R,"nick":N}
#   {"cmd":"disconnect"}
#
# Every presence and message from the server is printed as it arrives, read from the XML:
# {"event":"presence"|"message", from, to, type, id, body, subject, codes, item, occupant_id,
# stanza_id, destroy, error, raw}. slixmpp's own parsing is reported too:
# {"event":"moderated", id, by} from its 'moderated_message' event (XEP-0425).
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
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_MUC_USER = 'http://jabber.org/protocol/muc#user'
NS_SID = 'urn:xmpp:sid:0'
NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_RETRACT = 'urn:xmpp:message-retract:1'


def emit(event, **fields):
    try:
        print(json.dumps({'event': event, **fields}), flush=True)
    except (BrokenPipeError, ValueError):  # nobody is reading any more: leave
        os._exit(4)


def q(ns, name):
    return '{%s}%s' % (ns, name)


def split_tag(tag):
    if tag.startswith('{'):
        ns, name = tag[1:].split('}', 1)
        return ns, name
    return None, tag


def text_of(el, ns, name):
    c = el.find(q(ns, name))
    return None if c is None else (c.text or '')


def error_of(el):
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        return None
    condition, text = None, None
    for child in err:
        ns, name = split_tag(child.tag)
        if ns == NS_STANZAS and name == 'text':
            text = child.text
        elif ns == NS_STANZAS:
            condition = name
    return {'type': err.get('type'), 'condition': condition, 'text': text}


def describe(el):
    """The MUC-relevant parts of a presence or message."""
    x = el.find(q(NS_MUC_USER, 'x'))
    item = None if x is None else x.find(q(NS_MUC_USER, 'item'))
    destroy = None if x is None else x.find(q(NS_MUC_USER, 'destroy'))
    sid = el.find(q(NS_SID, 'stanza-id'))
    oid = el.find(q(NS_OCCUPANT_ID, 'occupant-id'))
    retract = el.find(q(NS_RETRACT, 'retract'))
    return {
        'from': el.get('from'), 'to': el.get('to'), 'id': el.get('id'),
        'type': el.get('type') or ('available' if split_tag(el.tag)[1] == 'presence' else 'normal'),
        'body': text_of(el, NS_CLIENT, 'body'),
        'subject': text_of(el, NS_CLIENT, 'subject'),
        'codes': [] if x is None else sorted(int(s.get('code')) for s in x.findall(q(NS_MUC_USER, 'status'))),
        'item': None if item is None else dict(item.attrib),
        'destroy': None if destroy is None else {'jid': destroy.get('jid'), 'reason': text_of(destroy, NS_MUC_USER, 'reason')},
        'occupant_id': None if oid is None else oid.get('id'),
        'stanza_id': None if sid is None else sid.get('id'),
        'retract': None if retract is None else retract.get('id'),
        'error': error_of(el),
        'raw': ET.tostring(el, encoding='unicode'),
    }


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True, help='bare JID; the resource goes in --resource')
    p.add_argument('--password', required=True)
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=60.0)
    p.add_argument('--debug', action='store_true')
    return p.parse_args()


async def run(args):
    from slixmpp import ClientXMPP, JID
    from slixmpp.exceptions import IqError, IqTimeout, PresenceError

    jid = args.jid + (f'/{args.resource}' if args.resource else '')
    loop = asyncio.get_running_loop()
    xmpp = ClientXMPP(jid, args.password, sasl_mech='SCRAM-SHA-256')
    xmpp.loop = loop
    for plugin in ('xep_0030', 'xep_0004', 'xep_0045', 'xep_0059', 'xep_0199', 'xep_0313', 'xep_0359', 'xep_0421', 'xep_0424', 'xep_0425'):
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

    waiters = []  # (predicate over described stanzas, future)

    def report_incoming(stanza):
        try:
            ns, name = split_tag(stanza.xml.tag)
            if ns == NS_CLIENT and name in ('presence', 'message'):
                d = describe(stanza.xml)
                emit(name, **d)
                for w in list(waiters):
                    if not w[1].done() and w[0](name, d):
                        w[1].set_result(d)
                        waiters.remove(w)
        except Exception as err:  # never let reporting break the stream
            emit('unparsed', detail=str(err))
        return stanza
    xmpp.add_filter('in', report_incoming, order=0)

    # slixmpp's own reading of a XEP-0425 (0.x) moderation.
    xmpp.add_event_handler('moderated_message', lambda m: emit('moderated', id=m['apply_to']['id'], by=str(m['apply_to']['moderated']['by'])))

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

    def wait_for(pred, timeout=8):
        fut = loop.create_future()
        waiters.append((pred, fut))
        return asyncio.wait_for(fut, timeout)

    async def barrier():
        await xmpp['xep_0199'].send_ping(xmpp.boundjid.domain, timeout=5)

    def outcome(iq):
        out = {'type': iq['type']}
        if iq['type'] == 'error':
            out['error'] = error_of(iq.xml)
        return out

    async def command(c):
        name = c.get('cmd')
        room = JID(c['room']) if c.get('room') else None
        if name == 'join':
            try:
                pres, subject, occupants, history = await xmpp['xep_0045'].join_muc_wait(
                    room, c['nick'], password=c.get('password'), maxstanzas=c.get('maxstanzas'), timeout=8)
            except PresenceError as err:
                return {'type': 'error', 'error': error_of(err.presence.xml)}
            d = describe(pres.xml)
            return {
                'type': 'joined', 'codes': d['codes'], 'item': d['item'], 'occupant_id': d['occupant_id'],
                'occupants': [p['from'].resource for p in occupants],
                'history': [{'body': m['body'], 'from': m['from'].full, 'stanza_id': describe(m.xml)['stanza_id']} for m in history],
                'subject': subject['subject'],
            }
        if name == 'configure':
            form = await xmpp['xep_0045'].get_room_config(room, timeout=8)
            for var, value in c['fields'].items():
                form.field[var]['value'] = value
            try:
                await xmpp['xep_0045'].set_room_config(room, form, timeout=8)
                return {'type': 'result'}
            except IqError as err:
                return outcome(err.iq)
        if name == 'say':
            msg = xmpp.make_message(mto=room, mbody=c['body'], mtype='groupchat')
            msg['id'] = os.urandom(6).hex()
            echo = wait_for(lambda kind, d: kind == 'message' and d['id'] == msg['id'] and d['type'] == 'groupchat')
            msg.send()
            d = await echo
            return {'type': 'result', 'id': msg['id'], 'stanza_id': d['stanza_id'], 'from': d['from']}
        if name == 'subject':
            echo = wait_for(lambda kind, d: kind == 'message' and d['type'] == 'groupchat' and d['subject'] == c['subject'] and d['body'] is None)
            xmpp['xep_0045'].set_subject(room, c['subject'])
            d = await echo
            return {'type': 'result', 'stanza_id': d['stanza_id'], 'from': d['from']}
        if name == 'pm':
            msg = xmpp.make_message(mto=JID(f"{c['room']}/{c['nick']}"), mbody=c['body'], mtype='chat')
            msg['id'] = os.urandom(6).hex()
            ET.SubElement(msg.xml, q(NS_MUC_USER, 'x'))
            msg.send()
            await barrier()
            return {'type': 'result', 'id': msg['id']}
        if name == 'kick':
            try:
                await xmpp['xep_0045'].set_role(room, c['nick'], 'none', reason=c.get('reason', ''), timeout=8)
                return {'type': 'result'}
            except IqError as err:
                return outcome(err.iq)
        if name == 'affiliation':
            try:
                await xmpp['xep_0045'].set_affiliation(room, c['affiliation'], jid=JID(c['jid']), reason=c.get('reason', ''), timeout=8)
                return {'type': 'result'}
            except IqError as err:
                return outcome(err.iq)
        if name == 'mam':
            rsm = {'max': c.get('max', 10)}
            if c.get('after'):
                rsm['after'] = c['after']
            if c.get('before') is not None:
                rsm['before'] = c['before']
            try:
                iq = await xmpp['xep_0313'].retrieve(jid=room, rsm=rsm, timeout=8)
            except IqError as err:
                return outcome(err.iq)
            ids, bodies, subjects, froms = [], [], [], []
            for m in iq['mam']['results']:
                result = m.xml.find(q(NS_MAM, 'result'))
                inner = result.find(q(NS_FORWARD, 'forwarded')).find(q(NS_CLIENT, 'message'))
                ids.append(result.get('id'))
                bodies.append(text_of(inner, NS_CLIENT, 'body'))
                subjects.append(text_of(inner, NS_CLIENT, 'subject'))
                froms.append(inner.get('from'))
            fin = iq.xml.find(q(NS_MAM, 'fin'))
            rset = fin.find(q(NS_RSM, 'set'))
            count = text_of(rset, NS_RSM, 'count')
            return {'type': 'result', 'ids': ids, 'bodies': bodies, 'subjects': subjects, 'froms': froms, 'complete': fin.get('complete') == 'true',
                    'first': text_of(rset, NS_RSM, 'first'), 'last': text_of(rset, NS_RSM, 'last'),
                    'count': None if count is None else int(count)}
        if name == 'moderate':
            try:
                await xmpp['xep_0425'].moderate(room, c['id'], c.get('reason', ''), timeout=8)
                return {'type': 'result'}
            except IqError as err:
                return outcome(err.iq)
        if name == 'leave':
            gone = wait_for(lambda kind, d: kind == 'presence' and d['type'] == 'unavailable' and 110 in d['codes'])
            xmpp['xep_0045'].leave_muc(room, c['nick'])
            d = await gone
            return {'type': 'result', 'codes': d['codes']}
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
        except (IqTimeout, asyncio.TimeoutError):
            emit('result', tag=tag, cmd=name, type='timeout')
        except Exception as err:  # a driver bug: report it, keep the session
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
