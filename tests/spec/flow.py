"""An integrator's first hour, with nothing but the client openapi-python-client generated
from /openapi.json (no hand-written request): connect a shop, send it a signed Shopify
webhook through the raw endpoint, read the shop's events until the list is done, register
and install a plugin, pull and acknowledge, publish an event, list dead letters.

Run by scripts/spec_check.sh: python flow.py BASE_URL ADMIN_TOKEN SAMPLE.json
"""

import base64
import hashlib
import hmac
import io
import json
import sys
import time
import uuid
from datetime import datetime, timezone

from omnigate_client import AuthenticatedClient, Client
from omnigate_client.api.events import events_list, events_publish
from omnigate_client.api.inbox import inbox_ack, inbox_dead_letters_list, inbox_pull
from omnigate_client.api.ingest import webhooks_receive
from omnigate_client.api.plugins import (
    plugins_create,
    plugins_installations_create,
    plugins_installations_list,
)
from omnigate_client.api.sources import sources_create, sources_list
from omnigate_client.models import (
    AckRequest,
    CreateInstallation,
    CreatePlugin,
    CreateSource,
    DeadLetterPage,
    EventsPage,
    InstallationPage,
    InstallationView,
    OrderCreated,
    PluginCreated,
    Provider,
    PublishEvent,
    PublishEventData,
    Published,
    PublishedType,
    PublishedTypeSchema,
    PullRequest,
    PullResponse,
    Scope,
    Settled,
    SourcePage,
    SourceView,
)
from omnigate_client.types import UNSET, File

SECRET = "shpss_spec_flow_0123456789"


def expect(value, kind):
    """The typed answer, or a failure naming what came instead (a problem, or None)."""
    if not isinstance(value, kind):
        sys.exit(f"expected {kind.__name__}, got {value!r}")
    return value


def send_order(gateway: Client, source_id: str, sample: dict) -> None:
    order = dict(sample)
    order["id"] = int(time.time() * 1000)
    order["updated_at"] = datetime.now(timezone.utc).isoformat()
    raw = json.dumps(order).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()).decode()
    answer = webhooks_receive.sync_detailed(
        source_id,
        client=gateway,
        body=File(payload=io.BytesIO(raw), mime_type="application/json"),
        x_shopify_hmac_sha_256=signature,
        x_shopify_topic="orders/create",
        x_shopify_event_id=str(uuid.uuid4()),
    )
    if answer.status_code != 202:
        sys.exit(f"the webhook was answered {answer.status_code}: {answer.content!r}")


def main() -> None:
    base, token, sample_path = sys.argv[1], sys.argv[2], sys.argv[3]
    sample = json.load(open(sample_path))
    admin = AuthenticatedClient(base_url=base, token=token)
    gateway = Client(base_url=base)
    tenant = f"spec-flow-{uuid.uuid4().hex[:8]}"

    source = expect(
        sources_create.sync(
            client=admin,
            body=CreateSource(tenant=tenant, provider=Provider.SHOPIFY, secret=SECRET),
        ),
        SourceView,
    )
    listed = expect(sources_list.sync(client=admin, tenant=tenant), SourcePage)
    assert [s.id for s in listed.sources] == [source.id] and listed.done

    send_order(gateway, source.id, sample)
    events, after = [], None
    for _ in range(50):
        page = expect(events_list.sync(tenant, client=admin, after=after or UNSET), EventsPage)
        events += page.events
        if page.done:
            break
        if not isinstance(page.next_, str):
            sys.exit("a page that is not done names no next")
        after = page.next_
    else:
        sys.exit("the events list never said done")
    # Typed by its type: the catalog's order.created, not a plugin's event.
    assert any(isinstance(e, OrderCreated) for e in events), events

    created = expect(
        plugins_create.sync(
            client=admin,
            body=CreatePlugin(
                name="Spec flow",
                event_types=["order.*"],
                publishes=[
                    PublishedType(
                        type_="specflow.checked",
                        schema=PublishedTypeSchema.from_dict({"type": "object"}),
                    )
                ],
            ),
        ),
        PluginCreated,
    )
    expect(
        plugins_installations_create.sync(
            created.id,
            client=admin,
            body=CreateInstallation(tenant=tenant, scopes=[Scope.EVENTSREAD, Scope.EVENTSPUBLISH]),
        ),
        InstallationView,
    )
    installs = expect(plugins_installations_list.sync(created.id, client=admin), InstallationPage)
    assert [i.tenant for i in installs.installations] == [tenant]

    # Installed now (the router sees a new installation within about a second): orders sent
    # from now on reach the plugin's inbox.
    plugin = AuthenticatedClient(base_url=base, token=created.api_key)
    deadline = time.monotonic() + 30
    while True:
        send_order(gateway, source.id, sample)
        pulled = expect(inbox_pull.sync(client=plugin, body=PullRequest(max_=10, wait_ms=2000)), PullResponse)
        if pulled.deliveries:
            break
        if time.monotonic() > deadline:
            sys.exit("no order reached the installed plugin within 30 s")
    settled = expect(
        inbox_ack.sync(client=plugin, body=AckRequest(receipts=[d.receipt for d in pulled.deliveries])),
        Settled,
    )
    assert settled.settled == len(pulled.deliveries), settled

    published = expect(
        events_publish.sync(
            client=plugin,
            body=PublishEvent(
                type_="specflow.checked",
                tenant=tenant,
                data=PublishEventData.from_dict({"orders": len(pulled.deliveries)}),
            ),
        ),
        Published,
    )
    assert published.event_id
    dead = expect(inbox_dead_letters_list.sync(client=plugin), DeadLetterPage)
    assert dead.dead_letters == []
    print(f"flow: {len(events)} event(s) read, {len(pulled.deliveries)} pulled and acknowledged, published {published.event_id}")


if __name__ == "__main__":
    main()
