"""ACLs (CreateAcls, DescribeAcls, DeleteAcls and the authorizer's checks)
against the suite's SASL_SSL broker, which runs Kafka's StandardAuthorizer
with super user alice; bob has no rights but those granted here. Run by
interop/run.sh with GREGOR_SECURE_ADDR and GREGOR_TLS_CA set.

    acl_case.py confluent     librdkafka's ACL admin API (see rdkafka_acl.py)
                              as alice grants bob WRITE, DESCRIBE and READ on
                              topic acl-confluent and READ on the groups
                              prefixed acl-confluent-; filtered describes find
                              exactly those; bob, with confluent-kafka-python,
                              produces (idempotently, KIP-679) and consumes in
                              the group, is refused on acl-confluent-secret and
                              in another group; after the deletes bob's produce
                              is refused; bob cannot manage ACLs
    acl_case.py kafka-python  KafkaAdminClient.create_acls/describe_acls/
                              delete_acls as alice for bob on acl-kafka-python;
                              bob's KafkaProducer writes there, is refused on
                              acl-kafka-python-secret and, after the delete,
                              on acl-kafka-python; bob's create_acls and
                              describe_acls get CLUSTER_AUTHORIZATION_FAILED
"""

import os
import ssl
import sys
import time

ADDR = os.environ.get("GREGOR_SECURE_ADDR", "")
CA = os.environ.get("GREGOR_TLS_CA", "")
if not ADDR or not CA:
    sys.exit("GREGOR_SECURE_ADDR and GREGOR_TLS_CA are not set: run interop/run.sh")
N = 50
BOB = "User:bob"


class Failure(Exception):
    pass


def check(cond, msg, *args):
    if not cond:
        raise Failure(msg % args if args else msg)


# ---- confluent-kafka-python / librdkafka -----------------------------------


def confluent():
    from confluent_kafka import Consumer, KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    import rdkafka_acl as ra

    topic, secret, group, prefix = "acl-confluent", "acl-confluent-secret", "acl-confluent-readers", "acl-confluent-"

    def conf(user, mech="SCRAM-SHA-256"):
        return {
            "bootstrap.servers": ADDR,
            "client.id": "interop-confluent-acl",
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": CA,
            "sasl.mechanisms": mech,
            "sasl.username": user,
            "sasl.password": user + "-secret",
        }

    # alice (a super user) creates both topics: bob may not (no CREATE).
    admin = AdminClient(conf("alice"))
    fs = admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in (topic, secret)],
                             operation_timeout=30)
    for f in fs.values():
        f.result(30)

    alice = ra.Admin(conf("alice", "SCRAM-SHA-512"))
    bob_admin = ra.Admin(conf("bob", "SCRAM-SHA-512"))
    try:
        # bob may neither create nor describe ACLs (ALTER, DESCRIBE on
        # the cluster).
        res = bob_admin.create_acls([(ra.RESOURCE_TOPIC, topic, ra.PATTERN_LITERAL, BOB, "*", ra.OP_ALL,
                                      ra.PERM_ALLOW)])
        check(len(res) == 1 and res[0] is not None and res[0].code == ra.ERR_CLUSTER_AUTHORIZATION_FAILED,
              "bob's CreateAcls: %s, want CLUSTER_AUTHORIZATION_FAILED", res)

        topic_acls = {(ra.RESOURCE_TOPIC, topic, ra.PATTERN_LITERAL, BOB, "*", op, ra.PERM_ALLOW)
                      for op in (ra.OP_WRITE, ra.OP_DESCRIBE, ra.OP_READ)}
        group_acls = {(ra.RESOURCE_GROUP, prefix, ra.PATTERN_PREFIXED, BOB, "*", ra.OP_READ, ra.PERM_ALLOW)}
        res = alice.create_acls(sorted(topic_acls | group_acls))
        check(res == [None] * 4, "alice's CreateAcls: %s", res)

        # bob may not see them: the broker answers his DescribeAcls with
        # CLUSTER_AUTHORIZATION_FAILED, which librdkafka (2.0.2 up to at
        # least 2.15) drops, reporting an empty success
        # (rd_kafka_DescribeAclsResponse_parse ignores the top-level
        # ErrorCode): so accept either, but never a binding. Nor may he
        # delete them (the per-filter error does come through).
        try:
            got = bob_admin.describe_acls((ra.RESOURCE_ANY, None, ra.PATTERN_ANY, None, None, ra.OP_ANY, ra.PERM_ANY))
            check(got == [], "bob's DescribeAcls found %s", got)
        except ra.AclError as e:
            check(e.code == ra.ERR_CLUSTER_AUTHORIZATION_FAILED, "bob's DescribeAcls: %s", e)
        res = bob_admin.delete_acls([(ra.RESOURCE_ANY, None, ra.PATTERN_ANY, BOB, None, ra.OP_ANY, ra.PERM_ANY)])
        check(len(res) == 1 and isinstance(res[0], ra.AclError) and res[0].code == ra.ERR_CLUSTER_AUTHORIZATION_FAILED,
              "bob's DeleteAcls: %s, want CLUSTER_AUTHORIZATION_FAILED", res)

        # Filtered describes: by literal topic, by group prefix, by
        # MATCH on a group name the prefix covers, by principal.
        got = set(alice.describe_acls((ra.RESOURCE_TOPIC, topic, ra.PATTERN_LITERAL, None, None, ra.OP_ANY,
                                       ra.PERM_ANY)))
        check(got == topic_acls, "describe topic %s: %s, want %s", topic, got, topic_acls)
        got = set(alice.describe_acls((ra.RESOURCE_GROUP, prefix, ra.PATTERN_PREFIXED, BOB, "*", ra.OP_ANY,
                                       ra.PERM_ANY)))
        check(got == group_acls, "describe prefixed groups %s: %s, want %s", prefix, got, group_acls)
        got = set(alice.describe_acls((ra.RESOURCE_GROUP, group, ra.PATTERN_MATCH, None, None, ra.OP_ANY,
                                       ra.PERM_ANY)))
        check(got == group_acls, "describe MATCH group %s: %s, want %s", group, got, group_acls)
        got = set(alice.describe_acls((ra.RESOURCE_ANY, None, ra.PATTERN_ANY, BOB, None, ra.OP_ANY, ra.PERM_ANY)))
        check(got >= topic_acls | group_acls, "describe principal %s: %s lacks some of %s", BOB, got,
              topic_acls | group_acls)

        def produce(t, n, **extra):
            """bob produces n records to t; returns the delivery errors."""
            errors, acked = [], []
            p = Producer(dict(conf("bob"), **{"message.timeout.ms": 20000, **extra}))
            for i in range(n):
                p.produce(t, value=b"v-%05d" % i, partition=0,
                          on_delivery=lambda err, msg: (errors if err else acked).append(err or msg.offset()))
            left = p.flush(30)
            check(left == 0, "%s: %d records still queued after 30s", t, left)
            check(len(errors) + len(acked) == n, "%s: %d errors + %d acks for %d records", t, len(errors),
                  len(acked), n)
            return errors

        # bob's producer is idempotent: WRITE on a topic is enough for
        # InitProducerId (KIP-679).
        errs = produce(topic, N, **{"enable.idempotence": True})
        check(not errs, "bob's produce to %s: %s", topic, errs[:3])
        errs = produce(secret, 3)
        check(errs and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs),
              "bob's produce to %s: %s, want TOPIC_AUTHORIZATION_FAILED", secret, errs[:3])

        def consume(g, want_n):
            c = Consumer(dict(conf("bob"), **{"group.id": g, "auto.offset.reset": "earliest"}))
            c.subscribe([topic])
            got, err = [], None
            deadline = time.time() + 40
            while len(got) < want_n and err is None and time.time() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    err = m.error()
                else:
                    got.append(m.value())
            c.close()
            return got, err

        got, err = consume(group, N)
        check(err is None, "bob's consumer in %s: %s", group, err)
        check(got == [b"v-%05d" % i for i in range(N)], "bob's consumer in %s read %d records, not the %d produced",
              group, len(got), N)
        got, err = consume("acl-other-readers", N)
        check(err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED,
              "bob's consumer in acl-other-readers: %s after %d records, want GROUP_AUTHORIZATION_FAILED", err,
              len(got))

        res = alice.delete_acls([(ra.RESOURCE_TOPIC, topic, ra.PATTERN_LITERAL, BOB, None, ra.OP_ANY, ra.PERM_ANY),
                                 (ra.RESOURCE_GROUP, prefix, ra.PATTERN_PREFIXED, BOB, None, ra.OP_ANY, ra.PERM_ANY)])
        check(len(res) == 2 and set(res[0]) == topic_acls and set(res[1]) == group_acls,
              "alice's DeleteAcls: %s", res)
        got = alice.describe_acls((ra.RESOURCE_ANY, None, ra.PATTERN_ANY, BOB, None, ra.OP_ANY, ra.PERM_ANY))
        check(not (set(got) & (topic_acls | group_acls)), "after the delete, describe still finds %s", got)
        errs = produce(topic, 3)
        check(errs and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs),
              "bob's produce to %s after the delete: %s, want TOPIC_AUTHORIZATION_FAILED", topic, errs[:3])
    finally:
        alice.close()
        bob_admin.close()
    return ("librdkafka CreateAcls/DescribeAcls/DeleteAcls as alice; bob produced %d records (idempotent) and "
            "consumed them in %s, refused on %s, in another group and after the delete; bob may not manage ACLs"
            % (N, group, secret))


# ---- kafka-python ----------------------------------------------------------


def kafka_python():
    import kafka.protocol.admin as pa
    from kafka import KafkaProducer
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, NewTopic, ResourcePattern, ResourcePatternFilter, ResourceType)
    from kafka.errors import ClusterAuthorizationFailedError, NoError, TopicAuthorizationFailedError

    topic, secret = "acl-kafka-python", "acl-kafka-python-secret"
    ctx = ssl.create_default_context(cafile=CA)

    def conf(user):
        return dict(bootstrap_servers=ADDR, client_id="interop-kafka-python-acl", security_protocol="SASL_SSL",
                    ssl_context=ctx, sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                    sasl_plain_password=user + "-secret",
                    # The default 2s for the connect + TLS + SASL +
                    # ApiVersions probe fails on a loaded machine
                    # (NoBrokersAvailable).
                    api_version_auto_timeout_ms=15000)

    alice = KafkaAdminClient(**conf("alice"))
    bob = KafkaAdminClient(**conf("bob"))
    alice.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in (topic, secret)],
                        timeout_ms=30000)
    # The ACL API versions kafka-python picks: the highest both sides
    # have (it knows v0-v1; the broker serves v1-v3).
    versions = {}
    for api in ("CreateAclsRequest", "DescribeAclsRequest", "DeleteAclsRequest"):
        versions[api] = alice._matching_api_version(getattr(pa, api))
    check(all(v == 1 for v in versions.values()), "kafka-python would send %s", versions)

    pattern = ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
    acls = [ACL(BOB, "*", op, ACLPermissionType.ALLOW, pattern) for op in (ACLOperation.WRITE, ACLOperation.DESCRIBE)]
    flt = ACLFilter(BOB, None, ACLOperation.ANY, ACLPermissionType.ANY,
                    ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))

    # bob may not manage ACLs.
    res = bob.create_acls(acls)
    check(not res["succeeded"] and len(res["failed"]) == 2 and
          all(e is ClusterAuthorizationFailedError for _, e in res["failed"]),
          "bob's create_acls: %s, want CLUSTER_AUTHORIZATION_FAILED", res)
    try:
        got = bob.describe_acls(flt)
        raise Failure("bob's describe_acls succeeded: %s" % (got,))
    except ClusterAuthorizationFailedError:
        pass

    res = alice.create_acls(acls)
    check(len(res["succeeded"]) == 2 and not res["failed"], "alice's create_acls: %s", res)
    got, err = alice.describe_acls(flt)
    check(err is NoError and set(got) == set(acls), "describe_acls: %s %s, want %s", got, err, acls)

    # One producer for every send: kafka-python 2.0.2 raises
    # TopicAuthorizationFailedError only when a metadata response names
    # several topics. Asked about the refused topic alone, it fails the
    # metadata update (cluster.update_metadata -> failed_update) without
    # marking the topic unauthorized, so send() retries until max_block_ms
    # and raises KafkaTimeoutError, whatever the broker's error.
    p = KafkaProducer(max_block_ms=20000, **conf("bob"))

    def send(t):
        return p.send(t, b"v-bob", partition=0).get(timeout=20)

    md = send(topic)
    check(md.topic == topic and md.offset == 0, "bob's send to %s: %s", topic, md)
    try:
        md = send(secret)
        raise Failure("bob's send to %s succeeded: %s" % (secret, md))
    except TopicAuthorizationFailedError:
        pass

    res = alice.delete_acls([flt])
    check(len(res) == 1 and res[0][2] is NoError and {a for a, e in res[0][1]} == set(acls) and
          all(e is NoError for a, e in res[0][1]), "alice's delete_acls: %s", res)
    got, err = alice.describe_acls(flt)
    check(err is NoError and not got, "describe_acls after the delete: %s %s", got, err)
    # The producer still has the topic's metadata: the Produce request
    # itself is refused.
    try:
        md = send(topic)
        raise Failure("bob's send to %s after the delete succeeded: %s" % (topic, md))
    except TopicAuthorizationFailedError:
        pass
    p.close(timeout=10)
    alice.close()
    bob.close()
    return ("kafka-python create_acls/describe_acls/delete_acls (v%d/v%d/v%d) as alice; bob wrote to %s, was "
            "refused on %s and after the delete; bob's create_acls and describe_acls refused"
            % (versions["CreateAclsRequest"], versions["DescribeAclsRequest"], versions["DeleteAclsRequest"],
               topic, secret))


def main():
    cases = {"confluent": confluent, "kafka-python": kafka_python}
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in cases:
        sys.exit("usage: acl_case.py {%s}" % "|".join(cases))
    try:
        summary = cases[name]()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("PASS: %s" % summary)


if __name__ == "__main__":
    main()
