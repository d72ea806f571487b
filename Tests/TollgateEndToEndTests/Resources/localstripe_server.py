"""localstripe (PyPI) on 127.0.0.1 only, for Tollgate's Stripe tests.

Usage: python localstripe_server.py  -> prints "PORT <n>" once it listens on 127.0.0.1:<n>.

Two changes to localstripe, both on the test side (docs/stripe.md lists its differences):
- its store is not pickled to /tmp/localstripe.pickle after every change (parallel instances
  would share that file); `DELETE /_config/data` still empties it between tests;
- `POST /v1/invoices` for a customer without a subscription makes an invoice of the customer's
  pending items, as Stripe does, instead of localstripe's 404 "No upcoming invoices".
"""
import socket
import sys

from aiohttp import web
from localstripe import resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None

_next_invoice = resources.Invoice._get_next_invoice.__func__


def _get_next_invoice(cls, customer=None, subscription=None, **kwargs):
    try:
        return _next_invoice(cls, customer=customer, subscription=subscription, **kwargs)
    except resources.UserError as error:
        if (error.code != 404 or subscription is not None or kwargs.get('upcoming')
                or kwargs.get('subscription_items') is not None):
            raise
        return cls(customer=customer, description=kwargs.get('description'))


resources.Invoice._get_next_invoice = classmethod(_get_next_invoice)

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(('127.0.0.1', 0))
print('PORT %d' % sock.getsockname()[1], flush=True)
web.run_app(app, sock=sock, print=None, access_log=None)
