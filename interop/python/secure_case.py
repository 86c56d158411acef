"""confluent-kafka-python and kafka-python against the suite's SASL_SSL
broker (run by interop/run.sh with GREGOR_SECURE_ADDR and GREGOR_TLS_CA
set; user alice, password alice-secret).

    secure_case.py confluent MECHANISM
    secure_case.py kafka-python MECHANISM

Each produces records over TLS after SASL MECHANISM (PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512), consumes them back in a group, and checks
that a wrong password is refused.
"""

import os
import ssl
import sys
import time

ADDR = os.environ.get("GREGOR_SECURE_ADDR", "")
CA = os.environ.get("GREGOR_TLS_CA", "")
if not ADDR or not CA:
    sys.exit("GREGOR_SECURE_ADDR and GREGOR_TLS_CA are not set: run interop/run.sh")
N = 100


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def confluent(mech):
    from confluent_kafka import Consumer, KafkaException, Producer

    topic = "confluent-sasl-" + mech.lower()
    conf = {
        "bootstrap.servers": ADDR,
        "client.id": "interop-confluent-sasl",
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": CA,
        "sasl.mechanisms": mech,
        "sasl.username": "alice",
        "sasl.password": "alice-secret",
    }
    p = Producer(conf)
    for i in range(N):
        p.produce(topic, value=b"v-%05d" % i)
    if p.flush(30) != 0:
        fail("records left unsent")
    c = Consumer(dict(conf, **{"group.id": "g-" + topic, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    deadline = time.time() + 60
    while len(got) < N and time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            fail("consume: %s" % m.error())
        got.append(m.value())
    c.close()
    if got != [b"v-%05d" % i for i in range(N)]:
        fail("consumed %d records, not the %d produced in order" % (len(got), N))
    bad = Producer(dict(conf, **{"sasl.password": "wrong"}))
    try:
        bad.list_topics(timeout=10)
        fail("a wrong password listed topics")
    except KafkaException:
        pass


def kafka_python(mech):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError

    topic = "kafka-python-sasl-" + mech.lower()
    ctx = ssl.create_default_context(cafile=CA)
    conf = dict(
        bootstrap_servers=ADDR,
        client_id="interop-kafka-python-sasl",
        # The version probe's 2 s default is too short on a loaded machine.
        api_version_auto_timeout_ms=15000,
        security_protocol="SASL_SSL",
        ssl_context=ctx,
        sasl_mechanism=mech,
        sasl_plain_username="alice",
        sasl_plain_password="alice-secret",
    )
    p = KafkaProducer(**conf)
    for i in range(N):
        p.send(topic, b"v-%05d" % i, partition=0)
    p.flush(30)
    p.close()
    c = KafkaConsumer(topic, group_id="g-" + topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **conf)
    got = [m.value for m in c]
    c.close()
    if got != [b"v-%05d" % i for i in range(N)]:
        fail("consumed %d records, not the %d produced in order" % (len(got), N))
    try:
        KafkaProducer(**dict(conf, sasl_plain_password="wrong"))
        fail("a wrong password connected")
    except KafkaError:
        pass


def main():
    lib, mech = sys.argv[1], sys.argv[2]
    {"confluent": confluent, "kafka-python": kafka_python}[lib](mech)
    print("PASS: %s %s over SASL_SSL: %d records round trip; wrong password refused" % (lib, mech, N))


if __name__ == "__main__":
    main()
