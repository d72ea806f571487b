#!/usr/bin/env python3
"""Drive Tollgate's Moesif-compatible collector API with Moesif's official
Python SDK (`moesifapi`, tested with 1.5.5) -- never raw HTTP.

Environment:
  TOLLGATE_COLLECTOR_URL    base URL, e.g. http://127.0.0.1:8001 (loopback only)
  TOLLGATE_COLLECTOR_KEY    sent as X-Moesif-Application-Id
  TOLLGATE_COMPANY_ID       company the users and events belong to
  TOLLGATE_SUBSCRIPTION_ID  optional; when set, the subscription is upserted
                            through update_subscription

Steps: update company -> users batch (2) -> single event -> events batch (3)
-> the single event again (same transaction_id, a duplicate) -> actions
(only if the SDK has create_action/create_actions_batch; 1.5.5 has not)
-> get_app_config (prints its X-Moesif-Config-ETag).

The last stdout line is one JSON object: {"ok": true, ...}; exit status 0.
On any error it prints the error and exits 1.
"""

import json
import os
import sys
import traceback
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Fixed transaction ids so the server side can assert on them.
SINGLE_TXN = "tollgate-e2e-single-0001"
BATCH_TXNS = ["tollgate-e2e-batch-0001", "tollgate-e2e-batch-0002", "tollgate-e2e-batch-0003"]


def env(name, required=True):
    value = os.environ.get(name, "").strip()
    if required and not value:
        raise RuntimeError("environment variable %s is required" % name)
    return value


def naive_utc_now():
    # What Moesif's own Python middlewares send: datetime.utcnow(), no offset,
    # serialised by the SDK via isoformat() -> "2025-01-01T12:00:00.123456".
    return datetime.now(timezone.utc).replace(tzinfo=None)


def main():
    base_url = env("TOLLGATE_COLLECTOR_URL").rstrip("/")
    app_id = env("TOLLGATE_COLLECTOR_KEY")
    company_id = env("TOLLGATE_COMPANY_ID")
    subscription_id = env("TOLLGATE_SUBSCRIPTION_ID", required=False)

    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK_HOSTS:
        raise RuntimeError("TOLLGATE_COLLECTOR_URL must be a loopback http(s) URL, got %r" % base_url)

    import moesifapi
    from moesifapi.configuration import Configuration
    from moesifapi.moesif_api_client import MoesifAPIClient
    from moesifapi.models import (CompanyModel, EventModel, EventRequestModel,
                                  EventResponseModel, SubscriptionModel, UserModel)

    # The SDK builds every URL as Configuration.BASE_URI + '/v1/...'.
    Configuration.BASE_URI = base_url
    client = MoesifAPIClient(app_id)  # sets Configuration.application_id
    api = client.api
    # Ignore HTTP(S)_PROXY from the environment: traffic must stay on loopback.
    session = getattr(api.http_client, "session", None)
    if session is not None:
        session.trust_env = False

    sdk_version = Configuration.version  # e.g. "moesifapi-python/1.5.5"
    summary = {"ok": True, "sdk_version": sdk_version, "company_id": company_id}

    # 1. Company --------------------------------------------------------------
    now = naive_utc_now()
    api.update_company(CompanyModel(
        company_id=company_id,
        company_domain="acme.example",
        modified_time=now,
        metadata={"name": "Acme Corp", "plan": "gold"},
    ))
    summary["company_updated"] = True

    # 2. Subscription (optional) ------------------------------------------------
    if subscription_id:
        api.update_subscription(SubscriptionModel(
            subscription_id=subscription_id,
            company_id=company_id,
            current_period_start=now - timedelta(days=1),
            current_period_end=now + timedelta(days=29),
            status="active",
            metadata={"plan": "gold"},
        ))
        summary["subscription_updated"] = subscription_id

    # 3. Users batch (2) ---------------------------------------------------------
    user_ids = ["tollgate-e2e-user-1", "tollgate-e2e-user-2"]
    api.update_users_batch([
        UserModel(
            user_id=uid,
            company_id=company_id,
            modified_time=naive_utc_now(),
            metadata={"email": "%s@acme.example" % uid, "name": "User %d" % (i + 1)},
        )
        for i, uid in enumerate(user_ids)
    ])
    summary["users"] = user_ids

    # 4. Events -------------------------------------------------------------------
    def make_event(txn, uri, verb, status, req_time, user_id=None, weight=None, body=None):
        return EventModel(
            request=EventRequestModel(
                time=req_time,
                uri=uri,
                verb=verb,
                headers={"Host": "127.0.0.1", "Accept": "application/json",
                         "User-Agent": "tollgate-e2e"},
                api_version="1.0",
                ip_address="127.0.0.1",
                body=body,
            ),
            response=EventResponseModel(
                time=req_time + timedelta(milliseconds=25),
                status=status,
                headers={"Content-Type": "application/json"},
                body={"ok": status < 400},
            ),
            user_id=user_id,
            company_id=company_id,
            metadata={"source": "moesif_sdk_client.py",
                      "subscription_id": subscription_id or None},
            direction="Incoming",
            weight=weight,
            transaction_id=txn,
        )

    # Single event; its time is naive UTC (no offset) like Moesif middlewares send.
    single_time = naive_utc_now()
    single = make_event(SINGLE_TXN, "http://127.0.0.1/shop/items/1", "GET", 200,
                        single_time, user_id=user_ids[0])
    single_headers = api.create_event(single)
    summary["single_event"] = SINGLE_TXN

    # Batch of 3; the times deliberately use the three shapes isoformat() can
    # produce so the server's parser sees all of them:
    #   timezone-aware UTC  -> "...T12:00:00.123456+00:00"
    #   naive, whole second -> "...T12:00:00"          (no fraction at all)
    #   naive               -> "...T12:00:00.123456"
    has_weight = "weight" in EventModel().names
    aware_now = datetime.now(timezone.utc)
    batch = [
        make_event(BATCH_TXNS[0], "http://127.0.0.1/shop/items", "GET", 200, aware_now,
                   user_id=user_ids[0]),
        make_event(BATCH_TXNS[1], "http://127.0.0.1/shop/items", "POST", 201,
                   naive_utc_now().replace(microsecond=0), user_id=user_ids[1],
                   weight=5 if has_weight else None, body={"name": "widget"}),
        make_event(BATCH_TXNS[2], "http://127.0.0.1/shop/checkout?cart=7", "POST", 500,
                   naive_utc_now(), user_id=user_ids[1], body={"cart": 7}),
    ]
    batch_headers = api.create_events_batch(batch)
    summary["batch_events"] = BATCH_TXNS
    summary["weighted_event"] = BATCH_TXNS[1] if has_weight else None

    # Same single event again: identical transaction_id, must be deduplicated.
    api.create_event(single)
    summary["duplicate_of"] = SINGLE_TXN

    # 5. Actions (only if this SDK version has them) ----------------------------
    create_action = getattr(api, "create_action", None)
    create_actions_batch = getattr(api, "create_actions_batch", None)
    action_model = getattr(moesifapi.models, "ActionModel", None)
    if create_action and create_actions_batch and action_model:
        def make_action(i):
            return action_model(
                action_name="report-generated",
                company_id=company_id,
                user_id=user_ids[i % 2],
                transaction_id="tollgate-e2e-action-%04d" % (i + 1),
                metadata={"pages": 3},
                request=EventRequestModel(time=naive_utc_now(),
                                          uri="http://127.0.0.1/reports"),
            )
        create_action(make_action(0))
        create_actions_batch([make_action(1), make_action(2)])
        summary["actions"] = 3
    else:
        summary["actions"] = "unsupported_by_sdk"

    # 6. App config ----------------------------------------------------------------
    config_response = api.get_app_config()  # HttpResponse(status_code, headers, raw_body)
    etag = config_response.headers.get("X-Moesif-Config-ETag")
    print("X-Moesif-Config-ETag: %s" % etag)
    config_body = json.loads(config_response.raw_body) if config_response.raw_body else None
    summary["config_etag"] = etag
    summary["config_status"] = config_response.status_code
    summary["config_sample_rate"] = config_body.get("sample_rate") if isinstance(config_body, dict) else None
    summary["event_response_etag"] = (single_headers or {}).get("X-Moesif-Config-ETag")
    summary["batch_response_etag"] = (batch_headers or {}).get("X-Moesif-Config-ETag")

    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - any failure fails the test
        detail = str(exc)
        context = getattr(exc, "context", None)  # moesifapi APIException
        if context is not None and getattr(context, "response", None) is not None:
            detail += " [status %s, body %r]" % (context.response.status_code,
                                                 context.response.raw_body)
        traceback.print_exc(file=sys.stderr)
        print("ERROR: %s: %s" % (type(exc).__name__, detail))
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(exc).__name__, detail)}))
        sys.exit(1)
