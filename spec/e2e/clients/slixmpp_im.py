#!/usr/bin/python3
# An interactive slixmpp (Debian python3-slixmpp) session for the instant-messaging e2e specs.
#
#   /usr/bin/python3 slixmpp_im.py --host 127.0.0.1 --port 5222 --jid sam@localhost \
#       --password pw --resource sli [--timeout 45] [--debug]
#
# It logs in (STARTTLS, SCRAM-SHA-256), prints {"event":"bound",...} and then reads one JSON
# command a line on stdin, in order, each answered by {"event":"result","tag":…,"cmd":…,…}:
#
#   {"cmd":"presence"[,"show","status","priority","to","type"]}  presence (initial when bare)
#   {"cmd":"subscribe","to":J} {"cmd":"approve","jid":J} {"cmd":"deny","jid":J}
#   {"cmd":"unsubscribe","to":J}                                 subscription presence
#   {"cmd":"roster_get"[,"ver":V]}                                roster get (XEP-0237 ver)
#   {"cmd":"roster_set","jid":J[,"name","groups"]} {"cmd":"roster_remove","jid":J}
#   {"cmd":"send","to":J,"body":B[,"type","id"]}                 a message
#   {"cmd":"block","jid":J} {"cmd":"unblock"[,"jid":J]} {"cmd":"blocklist"}   XEP-0191
#   {"cmd":"last","jid":J}                                       XEP-0012
#   {"cmd":"vcard_set","fn","nickname"[,"photo":{"type","data"(base64)}]}     XEP-0054
#   {"cmd":"vcard_get"[,"jid":J]}
#   {"cmd":"ping"[,"to":J]}                                      XEP-0199 (a round trip)
#   {"cmd":"disconnect"[,"status":S]}                            unavailable, </stream>, exit 0
#
# Stanzas that only route (presence, messages) are followed by a ping to the server before the
# result is printed, so the server has handled them by then. IQ results carry `type` and, for
# errors, `error: {type, condition, text, app: [{name, ns}]}`.
#
# Everything the server sends is printed as it arrives, before slixmpp handles it, read from the
# XML itself: {"event":"presence",type,from,to,status,show,priority,delay,error,raw},
# {"event":"message",type,from,to,id,body,delay,error,raw}, {"event":"roster_push",id,from,to,
# ver,items:[{jid,subscription,ask,name,approved,groups}]}, {"event":"block_push",action,items},
# {"event":"iq",type,from,to,ns,name} for other requests. `delay` is {from, stamp, text}.
#
# The session ends at "disconnect", when stdin closes, when the server closes the stream
# ({"event":"disconnected"}) or after --timeout seconds.
import base64
import os
import xml.etree.ElementTree as ET

import slix_common
from common import base_arguments, emit, exit_with

NS_CLIENT = 'jabber:client'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_ROSTER = 'jabber:iq:roster'
NS_DELAY = 'urn:xmpp:delay'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_LAST = 'jabber:iq:last'
NS_VCARD = 'vcard-temp'


def q(ns, name):
    return '{%s}%s' % (ns, name)


def split_tag(tag):
    if tag.startswith('{'):
        ns, name = tag[1:].split('}', 1)
        return ns, name
    return None, tag


def error_of(el):
    """The <error/> of a stanza: type, defined condition, text, application conditions."""
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        return None
    condition, text, app = None, None, []
    for child in err:
        ns, name = split_tag(child.tag)
        if ns == NS_STANZAS and name == 'text':
            text = child.text
        elif ns == NS_STANZAS:
            condition = name
        else:
            app.append({'name': name, 'ns': ns})
    return {'type': err.get('type'), 'condition': condition, 'text': text, 'app': app}


def delay_of(el):
    d = el.find(q(NS_DELAY, 'delay'))
    if d is None:
        return None
    return {'from': d.get('from'), 'stamp': d.get('stamp'), 'text': d.text}


def child_text(el, ns, name):
    c = el.find(q(ns, name))
    return None if c is None else (c.text or '')


def roster_items(query):
    items = []
    for item in query.findall(q(NS_ROSTER, 'item')):
        items.append({
            'jid': item.get('jid'),
            'subscription': item.get('subscription'),
            'ask': item.get('ask'),
            'name': item.get('name'),
            'approved': item.get('approved'),
            'groups': [g.text or '' for g in item.findall(q(NS_ROSTER, 'group'))],
        })
    return items


def raw(el):
    return ET.tostring(el, encoding='unicode')


def describe_incoming(el):
    """The JSON event for a stanza from the server, or None for replies to our own IQs."""
    ns, name = split_tag(el.tag)
    if ns != NS_CLIENT:
        return None
    common = {'from': el.get('from'), 'to': el.get('to'), 'id': el.get('id')}
    if name == 'presence':
        prio = child_text(el, NS_CLIENT, 'priority')
        return ('presence', {**common, 'type': el.get('type') or 'available',
                             'show': child_text(el, NS_CLIENT, 'show'),
                             'status': child_text(el, NS_CLIENT, 'status'),
                             'priority': None if prio is None else int(prio),
                             'delay': delay_of(el), 'error': error_of(el), 'raw': raw(el)})
    if name == 'message':
        return ('message', {**common, 'type': el.get('type') or 'normal',
                            'body': child_text(el, NS_CLIENT, 'body'),
                            'delay': delay_of(el), 'error': error_of(el), 'raw': raw(el)})
    if name == 'iq' and el.get('type') in ('get', 'set'):
        children = list(el)
        query = children[0] if children else None
        qns, qname = split_tag(query.tag) if query is not None else (None, None)
        if el.get('type') == 'set' and qns == NS_ROSTER and qname == 'query':
            return ('roster_push', {**common, 'ver': query.get('ver'), 'items': roster_items(query), 'raw': raw(el)})
        if el.get('type') == 'set' and qns == NS_BLOCKING and qname in ('block', 'unblock'):
            return ('block_push', {**common, 'action': qname,
                                   'items': [i.get('jid') for i in query.findall(q(NS_BLOCKING, 'item'))],
                                   'raw': raw(el)})
        return ('iq', {**common, 'type': el.get('type'), 'ns': qns, 'name': qname})
    return None


def parse_args():
    return base_arguments(timeout=45.0).parse_args()


async def run(args):
    # Imported here so that a missing package is reported as a JSON error line.
    from slixmpp.exceptions import IqError

    xmpp = slix_common.make_client(args, 'SCRAM-SHA-256', plugins=('xep_0199', 'xep_0012', 'xep_0054', 'xep_0191'))
    # Subscription requests are answered by commands only, never by slixmpp on its own.
    xmpp.auto_authorize = None
    xmpp.auto_subscribe = False
    # As in slixmpp_driver.py: decline channel binding, so a non-PLUS SCRAM sends GS2 flag 'n'.
    slix_common.decline_channel_binding(xmpp)

    def report_incoming(stanza):
        try:
            described = describe_incoming(stanza.xml)
        except Exception as err:  # never let reporting break the stream
            emit('unparsed', detail=str(err))
            described = None
        if described:
            emit(described[0], **described[1])
        return stanza
    xmpp.add_filter('in', report_incoming, order=0)

    login = slix_common.Login(xmpp)
    xmpp.add_event_handler('stream_error', lambda s: emit('stream_error', condition=s['condition'], text=s['text']))
    if not await login.run(args.host, args.port):
        return 1
    emit('bound', jid=xmpp.boundjid.full)

    def iq_outcome(iq):
        out = {'type': iq['type'], 'from': iq.xml.get('from'), 'id': iq['id']}
        if iq['type'] == 'error':
            out['error'] = error_of(iq.xml)
        return out

    async def barrier():
        await xmpp['xep_0199'].send_ping(xmpp.boundjid.domain, timeout=5)

    async def send_iq(iq):
        try:
            return await iq.send(timeout=8)
        except IqError as err:
            return err.iq

    def presence(ptype=None, to=None, show=None, status=None, priority=None):
        p = xmpp.Presence()
        if ptype:
            p['type'] = ptype
        if to:
            p['to'] = to
        if show:
            p['show'] = show
        if status is not None:
            p['status'] = status
        if priority is not None:
            p['priority'] = priority
        p.send()

    async def command(c):
        name = c.get('cmd')
        if name == 'presence':
            presence(c.get('type'), c.get('to'), c.get('show'), c.get('status'), c.get('priority'))
            await barrier()
            return {}
        if name in ('subscribe', 'unsubscribe'):
            presence(name, c['to'])
            await barrier()
            return {}
        if name in ('approve', 'deny'):
            presence('subscribed' if name == 'approve' else 'unsubscribed', c['jid'])
            await barrier()
            return {}
        if name == 'send':
            msg = xmpp.make_message(mto=c['to'], mbody=c['body'], mtype=c.get('type', 'chat'))
            msg['id'] = c.get('id') or os.urandom(6).hex()
            msg.send()
            await barrier()
            return {'id': msg['id']}
        if name == 'ping':
            reply = await send_iq(ping_iq(c.get('to')))
            return iq_outcome(reply)
        if name == 'roster_get':
            iq = xmpp.make_iq_get()
            query = ET.SubElement(iq.xml, q(NS_ROSTER, 'query'))
            if c.get('ver') is not None:
                query.set('ver', c['ver'])
            reply = await send_iq(iq)
            out = iq_outcome(reply)
            result = reply.xml.find(q(NS_ROSTER, 'query'))
            out['query'] = result is not None
            if result is not None:
                out['ver'] = result.get('ver')
                out['items'] = roster_items(result)
            return out
        if name in ('roster_set', 'roster_remove'):
            iq = xmpp.make_iq_set()
            query = ET.SubElement(iq.xml, q(NS_ROSTER, 'query'))
            item = ET.SubElement(query, q(NS_ROSTER, 'item'), {'jid': c['jid']})
            if name == 'roster_remove':
                item.set('subscription', 'remove')
            else:
                if c.get('name'):
                    item.set('name', c['name'])
                for g in c.get('groups') or []:
                    ET.SubElement(item, q(NS_ROSTER, 'group')).text = g
            return iq_outcome(await send_iq(iq))
        if name == 'block':
            try:
                reply = await xmpp['xep_0191'].block(c['jid'], timeout=8)
            except IqError as err:
                reply = err.iq
            return iq_outcome(reply)
        if name == 'unblock':
            if c.get('jid'):
                try:
                    reply = await xmpp['xep_0191'].unblock(c['jid'], timeout=8)
                except IqError as err:
                    reply = err.iq
            else:  # XEP-0191 §3.5: unblock everyone, an empty <unblock/>
                iq = xmpp.make_iq_set()
                ET.SubElement(iq.xml, q(NS_BLOCKING, 'unblock'))
                reply = await send_iq(iq)
            return iq_outcome(reply)
        if name == 'blocklist':
            try:
                reply = await xmpp['xep_0191'].get_blocked(timeout=8)
            except IqError as err:
                reply = err.iq
            out = iq_outcome(reply)
            bl = reply.xml.find(q(NS_BLOCKING, 'blocklist'))
            out['items'] = [] if bl is None else [i.get('jid') for i in bl.findall(q(NS_BLOCKING, 'item'))]
            return out
        if name == 'last':
            try:
                reply = await xmpp['xep_0012'].get_last_activity(c['jid'], timeout=8)
            except IqError as err:
                reply = err.iq
            out = iq_outcome(reply)
            query = reply.xml.find(q(NS_LAST, 'query'))
            if query is not None and reply['type'] == 'result':
                seconds = query.get('seconds')
                out['seconds'] = None if seconds is None else int(seconds)
                out['status'] = query.text
            return out
        if name == 'vcard_set':
            vcard = xmpp['xep_0054'].make_vcard()
            if c.get('fn') is not None:
                vcard['FN'] = c['fn']
            if c.get('nickname') is not None:
                vcard['NICKNAME'] = c['nickname']
            if c.get('photo'):
                vcard['PHOTO']['TYPE'] = c['photo']['type']
                vcard['PHOTO']['BINVAL'] = base64.b64decode(c['photo']['data'])
            try:
                await xmpp['xep_0054'].publish_vcard(vcard, timeout=8)
                return {'type': 'result'}
            except IqError as err:
                return iq_outcome(err.iq)
        if name == 'vcard_get':
            target = c.get('jid')
            iq = xmpp.make_iq_get(ito=target) if target else xmpp.make_iq_get()
            ET.SubElement(iq.xml, q(NS_VCARD, 'vCard'))
            reply = await send_iq(iq)
            out = iq_outcome(reply)
            vc = reply.xml.find(q(NS_VCARD, 'vCard'))
            if vc is not None and reply['type'] == 'result':
                photo = vc.find(q(NS_VCARD, 'PHOTO'))
                out['vcard'] = {
                    'fn': child_text(vc, NS_VCARD, 'FN'),
                    'nickname': child_text(vc, NS_VCARD, 'NICKNAME'),
                    'photo': None if photo is None else {
                        'type': child_text(photo, NS_VCARD, 'TYPE'),
                        'binval': (child_text(photo, NS_VCARD, 'BINVAL') or '').replace('\n', '').strip(),
                    },
                    'children': [split_tag(ch.tag)[1] for ch in vc],
                }
            return out
        raise ValueError(f'unknown command {name!r}')

    def ping_iq(to):
        iq = xmpp.make_iq_get(ito=to or xmpp.boundjid.domain)
        ET.SubElement(iq.xml, q('urn:xmpp:ping', 'ping'))
        return iq

    def before_disconnect(c):
        if c.get('status') is not None:
            presence('unavailable', status=c['status'])

    return await slix_common.serve_commands(xmpp, login.closed, command, before_disconnect)


def main():
    return slix_common.main(parse_args(), run)


if __name__ == '__main__':
    exit_with(main())
