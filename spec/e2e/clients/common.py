# The scaffolding every python e2e driver shares, whatever its XMPP library: the JSON-lines
# report on stdout, the common command-line options, the watchdog and the process exit.
#
# Drivers run as `/usr/bin/python3 -E -s driver.py …`, so this directory is on sys.path.
import argparse
import json
import logging
import os
import signal
import sys


def emit(event, **fields):
    """One JSON line on stdout: {"event": event, **fields}."""
    try:
        print(json.dumps({'event': event, **fields}), flush=True)
    except (BrokenPipeError, ValueError):  # nobody is reading any more: leave
        os._exit(4)


def base_arguments(timeout, jid_help='bare JID; the resource goes in --resource'):
    """The options every driver takes: where to connect, who to be, how long to live."""
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True, help=jid_help)
    p.add_argument('--password', required=True)
    p.add_argument('--resource')
    p.add_argument('--timeout', type=float, default=timeout)
    p.add_argument('--debug', action='store_true')
    return p


def parse_actions(tokens, simple, with_args):
    """Actions given on the command line: `simple` names take no argument; `with_args` maps a
    name to a function turning the token iterator into the action's arguments (a tuple)."""
    actions = []
    it = iter(tokens)
    for tok in it:
        if tok in simple:
            actions.append((tok,))
        elif tok in with_args:
            actions.append((tok, *with_args[tok](it)))
        else:
            raise SystemExit(f'unknown action {tok!r}')
    return actions


def prepare(args, quiet_otherwise=False):
    """Arms the watchdog and the logging; called before anything can hang."""
    # The last resort, should the event loop itself wedge: SIGALRM's default action ends us.
    signal.alarm(int(args.timeout) + 5)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format='%(asctime)s %(name)s %(levelname)s %(message)s')
    elif quiet_otherwise:
        logging.basicConfig(level=logging.CRITICAL)


def import_error(err, package):
    emit('error', stage='import', detail=str(err),
         hint=f'apt-get install {package} and run with /usr/bin/python3')
    return 3


def exit_with(code):
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown of the loop and its transports; nothing is left to flush.
    os._exit(code)
