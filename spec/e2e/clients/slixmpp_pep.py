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
import xml.etree.ElementTree as ET

import slix_common
from common import base_arguments, emit, exit_with

NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


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
    return base_arguments(timeout=45.0).parse_args()


async def run(args):
    # Imported here so that a missing package is reported as a JSON error line.
    from slixmpp import JID
    from slixmpp.exceptions import IqError

    xmpp = slix_common.make_client(args, 'SCRAM-SHA-256', plugins=(
        'xep_0030', 'xep_0004', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0084', 'xep_0048', 'xep_0199'))
    xmpp.auto_authorize = True
    xmpp.auto_subscribe = True
    # As in slixmpp_driver.py: decline channel binding, so a non-PLUS SCRAM sends GS2 flag 'n'.
    slix_common.decline_channel_binding(xmpp)

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

    login = slix_common.Login(xmpp)
    if not await login.run(args.host, args.port):
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

    return await slix_common.serve_commands(xmpp, login.closed, command)


def main():
    return slix_common.main(parse_args(), run)


if __name__ == '__main__':
    exit_with(main())
