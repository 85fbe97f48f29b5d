#!/usr/bin/python3
# An interactive nbxmpp (Debian python3-nbxmpp, the library under Gajim) session for the
# multi-device e2e specs, on a GLib main loop.
#
#   /usr/bin/python3 nbxmpp_multidevice.py --host 127.0.0.1 --port 5222 --jid sam@localhost \
#       --password pw --resource nb [--timeout 60] [--debug]
#
# Same JSON-lines protocol as nbxmpp_muc.py: {"event":"bound",...}, then one JSON command a line
# on stdin, each answered by {"event":"result","tag":…,"cmd":…,…}:
#
#   {"cmd":"presence"[,"priority":N]}                 available presence, then a ping barrier
#   {"cmd":"carbons"}                                 <enable xmlns='urn:xmpp:carbons:2'/>, as
#                                                     Gajim sends it (nbxmpp has no Carbons module)
#   {"cmd":"send","to":J,"body":B,"id":I[,"type"]}    a message, then a ping barrier
#   {"cmd":"mam"[,"with":J][,"after":A][,"before":B][,"max":N]}   one archive page:
#        {type, ids, msg_ids, bodies, complete, first, last, count}. nbxmpp's MAM.make_query has
#        no <before/>, so the query is built here with nbxmpp's Iq, DataForm and RSM nodes.
#   {"cmd":"ping"} {"cmd":"disconnect"}
#
# Every message from the server is printed as it arrives:
# {"event":"message",from,to,id,type,body,carbon:null|"sent"|"received",inner:{…}|null,raw}.
import os

import nbxmpp_common
from common import base_arguments, emit, exit_with

NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_DATA = 'jabber:x:data'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


def parse_args():
    return base_arguments(timeout=60.0, jid_help=None).parse_args()


def error_of(node):
    err = node.getTag('error')
    if err is None:
        return None
    condition = None
    for child in err.getChildren():
        if child.getNamespace() == NS_STANZAS and child.getName() != 'text':
            condition = child.getName()
    return {'type': err.getAttr('type'), 'condition': condition}


def plain(node):
    body = node.getTag('body')
    return {'from': node.getAttr('from'), 'to': node.getAttr('to'), 'id': node.getAttr('id'),
            'type': node.getAttr('type') or 'normal', 'body': None if body is None else body.getData()}


def describe(node):
    carbon, inner = None, None
    for kind in ('sent', 'received'):
        c = node.getTag(kind, namespace=NS_CARBONS)
        if c is not None:
            carbon = kind
            fwd = c.getTag('forwarded', namespace=NS_FORWARD)
            m = None if fwd is None else fwd.getTag('message')
            inner = None if m is None else plain(m)
    return {**plain(node), 'carbon': carbon, 'inner': inner, 'raw': str(node)}


class Driver(nbxmpp_common.CommandDriver):
    def __init__(self, args):
        super().__init__(args, {'SCRAM-SHA-256'})
        self.closing = False
        self.waiters = []
        c = self.client
        c.subscribe('connected', self.on_connected)
        c.subscribe('disconnected', self.on_disconnected)
        c.subscribe('connection-failed', self.on_disconnected)
        c.subscribe('stanza-received', self.on_stanza)

    def on_connected(self, client, _signal):
        emit('bound', jid=str(client.get_bound_jid()))
        self.read_commands()

    def on_disconnected(self, client, _signal):
        if self.closing:
            emit('disconnected', detail='requested')
            self.finish(0)
            return
        self.report_error('session')
        self.finish(1)

    def on_stanza(self, _client, _signal, node):
        try:
            if node.getName() != 'message':
                return
            for w in list(self.waiters):
                if w(node):
                    return
            emit('message', **describe(node))
        except Exception as err:
            emit('unparsed', detail=f'{type(err).__name__}: {err}')

    def ping(self, then):
        self.send_ping(lambda _c, _s: then())

    def command(self, c, done):
        from nbxmpp.protocol import Iq, Message, Presence
        name = c.get('cmd')
        if name == 'disconnect':
            self.closing = True
            emit('result', tag=c.get('tag'), cmd=name)
            self.client.disconnect()
            return
        if name == 'presence':
            p = Presence()
            if c.get('priority') is not None:
                p.setTagData('priority', str(c['priority']))
            self.client.send_stanza(p)
            self.ping(lambda: done())
            return
        if name == 'ping':
            self.ping(lambda: done())
            return
        if name == 'carbons':
            iq = Iq('set')
            iq.addChild('enable', namespace=NS_CARBONS)
            self.client.send_stanza(iq, callback=lambda _c, s: done(type=s.getType(), error=error_of(s)), timeout=8)
            return
        if name == 'send':
            m = Message(to=c['to'], body=c['body'], typ=c.get('type', 'chat'))
            m.setID(c['id'])
            self.client.send_stanza(m)
            self.ping(lambda: done(id=c['id']))
            return
        if name == 'mam':
            qid = os.urandom(6).hex()
            iq = Iq('set')
            query = iq.addChild('query', namespace=NS_MAM, attrs={'queryid': qid})
            form = query.addChild('x', namespace=NS_DATA, attrs={'type': 'submit'})
            ft = form.addChild('field', attrs={'var': 'FORM_TYPE', 'type': 'hidden'})
            ft.setTagData('value', NS_MAM)
            if c.get('with'):
                form.addChild('field', attrs={'var': 'with'}).setTagData('value', c['with'])
            rsm = query.addChild('set', namespace=NS_RSM)
            rsm.setTagData('max', str(c.get('max', 10)))
            if 'after' in c:
                rsm.setTagData('after', c['after'])
            if 'before' in c:
                # An empty <before/> asks for the last page (XEP-0059 §2.5).
                b = rsm.addChild('before')
                if c['before']:
                    b.setData(c['before'])
            results = []

            def collect(node):
                r = node.getTag('result', namespace=NS_MAM)
                if r is None or r.getAttr('queryid') != qid:
                    return False
                m = r.getTag('forwarded', namespace=NS_FORWARD).getTag('message')
                body = m.getTag('body')
                results.append({'id': r.getAttr('id'), 'msg_id': m.getAttr('id'), 'body': None if body is None else body.getData()})
                return True
            self.waiters.append(collect)

            def finished(_client, s):
                self.waiters.remove(collect)
                if s.getType() != 'result':
                    done(type=s.getType(), error=error_of(s))
                    return
                fin = s.getTag('fin', namespace=NS_MAM)
                st = fin.getTag('set', namespace=NS_RSM)
                count = st.getTagData('count') if st is not None else None
                done(type='result', ids=[r['id'] for r in results], msg_ids=[r['msg_id'] for r in results],
                     bodies=[r['body'] for r in results], complete=fin.getAttr('complete') in ('true', '1'),
                     first=None if st is None else st.getTagData('first'), last=None if st is None else st.getTagData('last'),
                     count=None if count is None else int(count))
            self.client.send_stanza(iq, callback=finished, timeout=10)
            return
        raise ValueError(f'unknown command {name!r}')


def main():
    args = parse_args()
    return nbxmpp_common.main(args, lambda: Driver(args))


if __name__ == '__main__':
    exit_with(main())
