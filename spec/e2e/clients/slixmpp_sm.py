#!/usr/bin/python3
# Drives slixmpp (Debian python3-slixmpp) with its XEP-0198 plugin against a Parley server: the
# stream-management e2e spec (spec/e2e/sm-slixmpp.spec.ts).
#
#   /usr/bin/python3 slixmpp_sm.py --host 127.0.0.1 --port 5222 --jid alice@localhost \
#       --password pw --mode starttls --resource phone recv 3 drop wait reconnect recv 3
#
# Actions run in order once the session is bound and stream management is enabled:
# `recv N` (waits until N more messages with a body have arrived), `drop` (kills the connection
# without closing the stream, as a phone losing its network does, and waits until slixmpp sees
# it), `wait` (until stdin closes), `reconnect` (connects again; slixmpp resumes the stream).
# Progress is printed as JSON lines on stdout: bound, sm_enabled, message, dropped, resumed
# (or sm_failed), done. --debug logs the wire exchange on stderr. The process always ends within
# --timeout seconds.
import asyncio
import json
import sys

import slix_common
from common import base_arguments, emit, exit_with, parse_actions


def count_argument(it):
    try:
        return (int(next(it)),)
    except (StopIteration, ValueError):
        raise SystemExit('recv needs a number')


def parse_args():
    p = base_arguments(timeout=20.0)
    p.add_argument('--mechanism', default='SCRAM-SHA-1')
    p.add_argument('--mode', choices=('starttls',), default='starttls')
    p.add_argument('actions', nargs='*')
    return p.parse_args()


async def run(args, actions):
    loop = asyncio.get_running_loop()
    xmpp = slix_common.make_client(args, args.mechanism, plugins=('xep_0198',))
    # As slixmpp_driver.py: decline channel binding with a non-PLUS SCRAM (GS2 flag 'n').
    slix_common.decline_channel_binding(xmpp)

    state = {'phase': loop.create_future()}
    messages: asyncio.Queue = asyncio.Queue()

    def settle(value):
        if not state['phase'].done():
            state['phase'].set_result(value)

    def fail(reason, **extra):
        if not state['phase'].done():
            state['phase'].set_exception(RuntimeError(json.dumps({'reason': reason, **extra})))

    xmpp.add_event_handler('sm_enabled', lambda s: (emit('sm_enabled', id=s['id'], resume=s['resume']), settle('enabled')))
    xmpp.add_event_handler('session_resumed', lambda s: (emit('resumed', h=s['h']), settle('resumed')))
    xmpp.add_event_handler('sm_failed', lambda s: (emit('sm_failed', condition=s.xml[0].tag if len(s.xml) else None), fail('sm_failed')))
    xmpp.add_event_handler('failed_all_auth', lambda _e: fail('auth'))
    xmpp.add_event_handler('connection_failed', lambda e: fail('connection', detail=str(e)))
    xmpp.add_event_handler('stream_error', lambda s: fail('stream-error', condition=s['condition'], text=s['text']))
    xmpp.add_event_handler('session_start', lambda _e: emit('bound', jid=xmpp.boundjid.full))

    def on_message(msg):
        if msg['body']:
            emit('message', id=msg['id'], body=msg['body'], **{'from': msg['from'].full})
            messages.put_nowait(msg)
    xmpp.add_event_handler('message', on_message)

    async def phase():
        try:
            return await state['phase']
        finally:
            state['phase'] = loop.create_future()

    def connect():
        xmpp.connect((args.host, args.port), force_starttls=True)

    connect()
    try:
        # The plugin enables stream management (with resumption) right after binding.
        await phase()
    except RuntimeError as err:
        emit('error', stage='login', **json.loads(str(err)))
        return 1

    for action in actions:
        try:
            if action[0] == 'recv':
                for _ in range(action[1]):
                    await messages.get()
            elif action[0] == 'drop':
                gone = loop.create_future()
                xmpp.add_event_handler('disconnected', lambda _e: gone.done() or gone.set_result(True), disposable=True)
                # No </stream:stream>: the connection just dies, and the server keeps the session.
                xmpp.abort()
                await gone
                emit('dropped')
            elif action[0] == 'wait':
                await loop.run_in_executor(None, sys.stdin.read)
            elif action[0] == 'reconnect':
                connect()
                await phase()
        except RuntimeError as err:
            emit('error', stage=action[0], **json.loads(str(err)))
            return 1

    await xmpp.disconnect(wait=1)
    emit('done')
    return 0


def main():
    args = parse_args()
    actions = parse_actions(args.actions, ('drop', 'wait', 'reconnect'), {'recv': count_argument})
    return slix_common.main(args, lambda a: run(a, actions))


if __name__ == '__main__':
    exit_with(main())
