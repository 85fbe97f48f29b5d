#!/usr/bin/python3
# An interactive nbxmpp (Debian python3-nbxmpp, the library under Gajim) session for the MUC e2e
# specs, on a GLib main loop, using nbxmpp's MUC, MAM and Moderation modules as Gajim does.
#
#   /usr/bin/python3 nbxmpp_muc.py --host 127.0.0.1 --port 5222 --jid sam@localhost \
#       --password pw --resource nb [--timeout 60] [--debug]
#
# Same JSON protocol as slixmpp_muc.py (see there): it prints {"event":"bound",...}, then reads one
# JSON command a line on stdin, each answered by {"event":"result","tag":…,"cmd":…,…}: join,
# configure, say, pm, kick, affiliation, mam (forward paging only: nbxmpp's make_query has no
# <before/>), moderate, leave, disconnect. Every presence and message from the server is printed
# as it arrives; nbxmpp's own reading of a moderation (MessageProperties.moderation) is printed
# as {"event":"moderated", id, by}.
#
# Gajim builds the join presence itself (nbxmpp has no join call): <x xmlns='…muc'> with
# <history/> and <password/>; so does this driver.
import argparse
import json
import logging
import os
import signal
import sys

NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = 'http://jabber.org/protocol/muc#user'
NS_SID = 'urn:xmpp:sid:0'
NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_DELAY = 'urn:xmpp:delay'
NS_RETRACT = 'urn:xmpp:message-retract:1'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


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
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=60.0)
    p.add_argument('--debug', action='store_true')
    return p.parse_args()


def error_of(node):
    err = node.getTag('error')
    if err is None:
        return None
    condition, text = None, None
    for child in err.getChildren():
        if child.getNamespace() == NS_STANZAS:
            if child.getName() == 'text':
                text = child.getData()
            else:
                condition = child.getName()
    return {'type': err.getAttr('type'), 'condition': condition, 'text': text}


def describe(node):
    x = node.getTag('x', namespace=NS_MUC_USER)
    item = None if x is None else x.getTag('item')
    destroy = None if x is None else x.getTag('destroy')
    sid = node.getTag('stanza-id', namespace=NS_SID)
    oid = node.getTag('occupant-id', namespace=NS_OCCUPANT_ID)
    retract = node.getTag('retract', namespace=NS_RETRACT)
    body = node.getTag('body')
    subject = node.getTag('subject')
    return {
        'from': node.getAttr('from'), 'to': node.getAttr('to'), 'id': node.getAttr('id'),
        'type': node.getAttr('type') or ('available' if node.getName() == 'presence' else 'normal'),
        'body': None if body is None else body.getData(),
        'subject': None if subject is None else subject.getData(),
        'codes': [] if x is None else sorted(int(s.getAttr('code')) for s in x.getTags('status')),
        'item': None if item is None else dict(item.getAttrs()),
        'destroy': None if destroy is None else {'jid': destroy.getAttr('jid'), 'reason': destroy.getTagData('reason')},
        'occupant_id': None if oid is None else oid.getAttr('id'),
        'stanza_id': None if sid is None else sid.getAttr('id'),
        'retract': None if retract is None else retract.getAttr('id'),
        'delay_from': None if node.getTag('delay', namespace=NS_DELAY) is None else node.getTag('delay', namespace=NS_DELAY).getAttr('from'),
        'error': error_of(node),
        'raw': str(node),
    }


class Driver:
    def __init__(self, args):
        from gi.repository import GLib
        from nbxmpp.client import Client
        from nbxmpp.const import ConnectionProtocol, ConnectionType
        from nbxmpp.structs import StanzaHandler

        self.GLib = GLib
        self.args = args
        self.code = None
        self.closing = False
        self.busy = False
        self.pending = []
        self.waiters = []  # [predicate(kind, described), callback(described)]
        # nbxmpp holds task callbacks by weak reference (Task.add_done_callback); these keep them alive.
        self.keep = []
        self.buffer = b''
        self.loop = GLib.MainLoop()
        user, _, domain = args.jid.partition('@')
        self.domain = domain
        c = Client(log_context='driver')
        c.set_domain(domain)
        c.set_username(user)
        c.set_password(args.password)
        if args.resource:
            c.set_resource(args.resource)
        c.set_custom_host(f'{args.host}:{args.port}', ConnectionProtocol.TCP, ConnectionType.START_TLS)
        c.set_mechs({'SCRAM-SHA-256'})
        c.set_sm_disabled(True)
        c.set_ignore_tls_errors(True)
        c.subscribe('connected', self.on_connected)
        c.subscribe('disconnected', self.on_disconnected)
        c.subscribe('connection-failed', self.on_disconnected)
        c.subscribe('stanza-received', self.on_stanza)
        c.register_handler(StanzaHandler(name='message', callback=self.on_message_properties, priority=100))
        self.client = c

    # --- lifecycle -------------------------------------------------------------------------------

    def run(self):
        self.GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        self.client.connect()
        self.loop.run()
        return self.code if self.code is not None else 1

    def finish(self, code):
        if self.code is None:
            self.code = code
        self.loop.quit()

    def on_timeout(self):
        emit('error', stage='timeout', detail=f'gave up after {self.args.timeout}s')
        self.finish(2)
        return False

    def on_connected(self, client, _signal):
        emit('bound', jid=str(client.get_bound_jid()))
        channel = self.GLib.IOChannel.unix_new(sys.stdin.fileno())
        self.GLib.io_add_watch(channel, self.GLib.PRIORITY_DEFAULT, self.GLib.IOCondition.IN | self.GLib.IOCondition.HUP, self.on_stdin)

    def on_disconnected(self, client, _signal):
        if self.closing:
            emit('disconnected', detail='requested')
            self.finish(0)
            return
        domain, error, text = client.get_error()
        emit('error', stage='session', domain=str(domain) if domain is not None else None, condition=error, text=text)
        self.finish(1)

    # --- what the server sends -------------------------------------------------------------------

    def on_stanza(self, _client, _signal, node):
        try:
            name = node.getName()
            if name not in ('presence', 'message'):
                return
            d = describe(node)
            emit(name, **d)
            for w in list(self.waiters):
                if w[0](name, d, node):
                    self.waiters.remove(w)
                    w[1](d, node)
        except Exception as err:  # never let reporting break the stream
            emit('unparsed', detail=f'{type(err).__name__}: {err}')

    def on_message_properties(self, _client, _stanza, properties):
        if properties.moderation is not None:
            emit('moderated', id=properties.moderation.stanza_id, by=str(properties.moderation.moderator_jid))

    def wait(self, pred, callback):
        self.waiters.append([pred, callback])

    # --- commands ----------------------------------------------------------------------------------

    def on_stdin(self, _channel, _condition):
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.pending.append({'cmd': 'disconnect'})
            self.next_command()
            return False
        self.buffer += data
        while b'\n' in self.buffer:
            line, self.buffer = self.buffer.split(b'\n', 1)
            if line.strip():
                try:
                    self.pending.append(json.loads(line))
                except ValueError as err:
                    emit('error', stage='command', detail=f'not JSON: {err}')
        self.next_command()
        return True

    def next_command(self):
        if self.busy or not self.pending:
            return
        c = self.pending.pop(0)
        self.busy = True

        def done(**out):
            emit('result', tag=c.get('tag'), cmd=c.get('cmd'), **out)
            self.busy = False
            self.GLib.idle_add(lambda: self.next_command() and False)
        try:
            self.command(c, done)
        except Exception as err:  # a driver bug: report it, keep the session
            emit('error', stage='command', cmd=c.get('cmd'), tag=c.get('tag'), detail=f'{type(err).__name__}: {err}')
            self.busy = False

    def cb(self, fn):
        self.keep.append(fn)
        return fn

    def task_outcome(self, task):
        from nbxmpp.errors import StanzaError
        try:
            return {'type': 'result', 'value': task.finish()}
        except StanzaError as err:
            return {'type': 'error', 'error': error_of(err.stanza)}

    def command(self, c, done):
        from nbxmpp.protocol import JID, Message, Presence, Iq, Node
        name = c.get('cmd')
        room = c.get('room')
        muc = self.client.get_module('MUC')
        if name == 'disconnect':
            self.closing = True
            emit('result', tag=c.get('tag'), cmd=name)
            self.client.disconnect()
            return
        if name == 'join':
            occupant = f"{room}/{c['nick']}"
            p = Presence(to=occupant)
            x = p.addChild('x', namespace=NS_MUC)
            if c.get('password') is not None:
                x.setTagData('password', c['password'])
            if c.get('maxstanzas') is not None:
                x.addChild('history', attrs={'maxstanzas': str(c['maxstanzas'])})
            state = {'occupants': [], 'history': [], 'self': None}

            def is_room(d):
                return d['from'] is not None and d['from'].split('/')[0] == room

            def on_presence(d, _node):
                if d['type'] == 'error':
                    self.waiters.remove(occupants_waiter)
                    self.waiters.remove(history_waiter)
                    done(type='error', error=d['error'])
                    return
                state['self'] = d
                self.wait(lambda k, d2, n: k == 'message' and is_room(d2) and d2['subject'] is not None and d2['body'] is None, on_subject)

            def on_subject(d, _node):
                self.waiters.remove(occupants_waiter)
                self.waiters.remove(history_waiter)
                s = state['self']
                done(type='joined', codes=s['codes'], item=s['item'], occupant_id=s['occupant_id'], occupants=state['occupants'],
                     history=state['history'], subject=d['subject'])

            def collect_occupant(k, d, _n):
                if k == 'presence' and is_room(d) and 110 not in d['codes'] and d['type'] == 'available':
                    state['occupants'].append(d['from'].split('/', 1)[1])
                return False

            def collect_history(k, d, _n):
                if k == 'message' and is_room(d) and d['body'] is not None and d['delay_from'] == room:
                    state['history'].append({'body': d['body'], 'from': d['from'], 'stanza_id': d['stanza_id']})
                return False
            occupants_waiter = [collect_occupant, None]
            history_waiter = [collect_history, None]
            self.waiters.append(occupants_waiter)
            self.waiters.append(history_waiter)
            self.wait(lambda k, d, n: k == 'presence' and d['from'] == occupant and (d['type'] == 'error' or (d['type'] == 'available' and 110 in d['codes'])), on_presence)
            self.client.send_stanza(p)
            return
        if name == 'configure':
            def got_form(task):
                out = self.task_outcome(task)
                if out['type'] != 'result':
                    done(**out)
                    return
                form = out['value'].form
                for var, value in c['fields'].items():
                    field = form[var]
                    if isinstance(value, list):
                        field.values = value
                    elif field.type_ == 'boolean':
                        field.value = value in ('1', 'true', True)
                    else:
                        field.value = value
                muc.set_config(JID.from_string(room), form, callback=self.cb(lambda t: done(**self.clean(t))))
            muc.request_config(JID.from_string(room), callback=self.cb(got_form))
            return
        if name == 'say':
            m = Message(to=room, body=c['body'], typ='groupchat')
            mid = os.urandom(6).hex()
            m.setID(mid)
            self.wait(lambda k, d, n: k == 'message' and d['id'] == mid and d['type'] == 'groupchat',
                      lambda d, n: done(type='result', id=mid, stanza_id=d['stanza_id'], **{'from': d['from']}))
            self.client.send_stanza(m)
            return
        if name == 'pm':
            m = Message(to=f"{room}/{c['nick']}", body=c['body'], typ='chat')
            m.addChild('x', namespace=NS_MUC_USER)
            mid = os.urandom(6).hex()
            m.setID(mid)
            self.client.send_stanza(m)
            self.ping(lambda: done(type='result', id=mid))
            return
        if name == 'kick':
            muc.set_role(JID.from_string(room), c['nick'], 'none', c.get('reason'), callback=self.cb(lambda t: done(**self.clean(t))))
            return
        if name == 'affiliation':
            users = {c['jid']: {'affiliation': c['affiliation']}}
            if c.get('reason'):
                users[c['jid']]['reason'] = c['reason']
            muc.set_affiliation(JID.from_string(room), users, callback=self.cb(lambda t: done(**self.clean(t))))
            return
        if name == 'mam':
            qid = os.urandom(6).hex()
            results = []

            def collect(k, d, node):
                if k != 'message':
                    return False
                r = node.getTag('result', namespace=NS_MAM)
                if r is None or r.getAttr('queryid') != qid:
                    return False
                inner = r.getTag('forwarded', namespace=NS_FORWARD).getTag('message')
                results.append({'id': r.getAttr('id'), 'body': inner.getTagData('body'), 'from': inner.getAttr('from')})
                return False
            collector = [collect, None]
            self.waiters.append(collector)

            def finished(task):
                self.waiters.remove(collector)
                out = self.task_outcome(task)
                if out['type'] != 'result':
                    done(**out)
                    return
                data = out['value']
                done(type='result', ids=[r['id'] for r in results], bodies=[r['body'] for r in results], froms=[r['from'] for r in results],
                     complete=data.complete, first=data.rsm.first, last=data.rsm.last, count=data.rsm.count)
            self.client.get_module('MAM').make_query(JID.from_string(room), queryid=qid, after=c.get('after'), max_=c.get('max', 10), callback=self.cb(finished))
            return
        if name == 'moderate':
            self.client.get_module('Moderation').send_retract_request(JID.from_string(room), c['id'], c.get('reason'), callback=self.cb(lambda t: done(**self.clean(t))))
            return
        if name == 'leave':
            occupant = f"{room}/{c['nick']}"
            self.wait(lambda k, d, n: k == 'presence' and d['from'] == occupant and d['type'] == 'unavailable' and 110 in d['codes'],
                      lambda d, n: done(type='result', codes=d['codes']))
            self.client.send_stanza(Presence(to=occupant, typ='unavailable'))
            return
        raise ValueError(f'unknown command {name!r}')

    def clean(self, task):
        out = self.task_outcome(task)
        out.pop('value', None)
        return out

    def ping(self, then):
        from nbxmpp.protocol import Iq
        iq = Iq('get', to=self.domain)
        iq.addChild(name='ping', namespace='urn:xmpp:ping')
        self.client.send_stanza(iq, callback=lambda _c, _s: then(), timeout=5)


def main():
    args = parse_args()
    signal.alarm(int(args.timeout) + 5)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    else:
        logging.basicConfig(level=logging.CRITICAL)
    try:
        import gi  # noqa: F401
        import nbxmpp  # noqa: F401
    except ImportError as err:
        emit('error', stage='import', detail=str(err), hint='apt-get install python3-nbxmpp and run with /usr/bin/python3')
        return 3
    driver = Driver(args)
    if args.debug:
        driver.client.subscribe('stanza-sent', lambda _c, _s, data: print(f'SEND: {data}', file=sys.stderr, flush=True))
        driver.client.subscribe('stanza-received', lambda _c, _s, data: print(f'RECV: {data}', file=sys.stderr, flush=True))
    return driver.run()


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
