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
import xml.etree.ElementTree as ET

import slix_common
from common import base_arguments, emit, exit_with

NS_CLIENT = 'jabber:client'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


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
    return base_arguments(timeout=60.0, jid_help=None).parse_args()


async def run(args):
    from slixmpp import JID
    from slixmpp.exceptions import IqError

    xmpp = slix_common.make_client(args, 'SCRAM-SHA-256', plugins=('xep_0199', 'xep_0059', 'xep_0280', 'xep_0313'))
    slix_common.decline_channel_binding(xmpp)

    def report_incoming(stanza):
        try:
            el = stanza.xml
            if el.tag == q(NS_CLIENT, 'message') and el.find(q(NS_MAM, 'result')) is None:
                emit('message', **describe_message(el))
        except Exception as err:
            emit('unparsed', detail=str(err))
        return stanza
    xmpp.add_filter('in', report_incoming, order=0)

    login = slix_common.Login(xmpp)
    if not await login.run(args.host, args.port):
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

    return await slix_common.serve_commands(xmpp, login.closed, command)


def main():
    return slix_common.main(parse_args(), run)


if __name__ == '__main__':
    exit_with(main())
