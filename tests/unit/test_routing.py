"""The router holds attribute requests made while the platform connection is not
subscribed (connectors start before it connects): the answer would find no subscription.
Pure: the router is given a recording publish function."""
import json

from thingsboard_gateway.gateway.routing import Router
from thingsboard_gateway.platform import topics


def router_with_log():
    published = []
    router = Router(lambda topic, payload: published.append((topic, json.loads(payload))), lambda device: None, {})
    return router, published


def test_a_request_before_the_connection_is_ready_is_sent_once_it_is():
    router, published = router_with_log()
    answers = []
    request_id = router.request_attributes("Probe Device", ["targetTemp"], answers.append)
    assert published == []  # not subscribed yet: held
    router.connection_ready()
    assert published == [(topics.ATTRIBUTES_REQUEST, {"id": request_id, "device": "Probe Device", "client": False,
                                                       "key": "targetTemp"})]
    router.handle(topics.ATTRIBUTES_RESPONSE, json.dumps({"id": request_id, "value": 21.5}).encode())
    assert answers == [{"id": request_id, "value": 21.5}]


def test_requests_go_at_once_while_ready_and_are_held_again_after_the_connection_is_lost():
    router, published = router_with_log()
    router.connection_ready()
    router.request_attributes("A", ["x"], lambda answer: None)
    assert len(published) == 1
    router.connection_lost()
    router.request_attributes("A", ["y", "z"], lambda answer: None)
    assert len(published) == 1
    router.connection_ready()
    assert published[-1][1]["keys"] == ["y", "z"] and len(published) == 2
    router.connection_ready()  # a second ready sends nothing twice
    assert len(published) == 2
