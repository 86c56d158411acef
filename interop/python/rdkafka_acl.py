"""librdkafka's ACL admin API (rd_kafka_CreateAcls, rd_kafka_DescribeAcls,
rd_kafka_DeleteAcls, in librdkafka since 1.9) called through ctypes.

Debian's python3-confluent-kafka is 1.7.0, whose AdminClient predates
create_acls/describe_acls/delete_acls (added in 1.9.0, as thin wrappers
of these same three C functions); its librdkafka1 is 2.0.2, which has
them. So the ACL requests come from the unmodified librdkafka that
confluent-kafka-python runs on, the produce and consume checks from
confluent-kafka-python itself.
"""

import ctypes
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_void_p

_lib = ctypes.CDLL("librdkafka.so.1")

# rdkafka.h enums.
RESOURCE_ANY, RESOURCE_TOPIC, RESOURCE_GROUP, RESOURCE_BROKER = 1, 2, 3, 4
PATTERN_ANY, PATTERN_MATCH, PATTERN_LITERAL, PATTERN_PREFIXED = 1, 2, 3, 4
OP_ANY, OP_ALL, OP_READ, OP_WRITE, OP_CREATE, OP_DELETE, OP_ALTER, OP_DESCRIBE = 1, 2, 3, 4, 5, 6, 7, 8
PERM_ANY, PERM_DENY, PERM_ALLOW = 1, 2, 3
ERR_CLUSTER_AUTHORIZATION_FAILED = 31
RD_KAFKA_PRODUCER = 0


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


_conf_new = _fn("rd_kafka_conf_new", c_void_p)
_conf_set = _fn("rd_kafka_conf_set", c_int, c_void_p, c_char_p, c_char_p, c_char_p, c_size_t)
_new = _fn("rd_kafka_new", c_void_p, c_int, c_void_p, c_char_p, c_size_t)
_destroy = _fn("rd_kafka_destroy", None, c_void_p)
_queue_new = _fn("rd_kafka_queue_new", c_void_p, c_void_p)
_queue_destroy = _fn("rd_kafka_queue_destroy", None, c_void_p)
_queue_poll = _fn("rd_kafka_queue_poll", c_void_p, c_void_p, c_int)
_event_destroy = _fn("rd_kafka_event_destroy", None, c_void_p)
_event_error = _fn("rd_kafka_event_error", c_int, c_void_p)
_event_error_string = _fn("rd_kafka_event_error_string", c_char_p, c_void_p)
_err2name = _fn("rd_kafka_err2name", c_char_p, c_int)
_error_code = _fn("rd_kafka_error_code", c_int, c_void_p)
_error_string = _fn("rd_kafka_error_string", c_char_p, c_void_p)
_binding_args = (c_int, c_char_p, c_int, c_char_p, c_char_p, c_int, c_int, c_char_p, c_size_t)
_binding_new = _fn("rd_kafka_AclBinding_new", c_void_p, *_binding_args)
_filter_new = _fn("rd_kafka_AclBindingFilter_new", c_void_p, *_binding_args)
_binding_destroy = _fn("rd_kafka_AclBinding_destroy", None, c_void_p)
_b_restype = _fn("rd_kafka_AclBinding_restype", c_int, c_void_p)
_b_name = _fn("rd_kafka_AclBinding_name", c_char_p, c_void_p)
_b_pattern = _fn("rd_kafka_AclBinding_resource_pattern_type", c_int, c_void_p)
_b_principal = _fn("rd_kafka_AclBinding_principal", c_char_p, c_void_p)
_b_host = _fn("rd_kafka_AclBinding_host", c_char_p, c_void_p)
_b_operation = _fn("rd_kafka_AclBinding_operation", c_int, c_void_p)
_b_permission = _fn("rd_kafka_AclBinding_permission_type", c_int, c_void_p)
_create = _fn("rd_kafka_CreateAcls", None, c_void_p, POINTER(c_void_p), c_size_t, c_void_p, c_void_p)
_describe = _fn("rd_kafka_DescribeAcls", None, c_void_p, c_void_p, c_void_p, c_void_p)
_delete = _fn("rd_kafka_DeleteAcls", None, c_void_p, POINTER(c_void_p), c_size_t, c_void_p, c_void_p)
_ev_create = _fn("rd_kafka_event_CreateAcls_result", c_void_p, c_void_p)
_ev_describe = _fn("rd_kafka_event_DescribeAcls_result", c_void_p, c_void_p)
_ev_delete = _fn("rd_kafka_event_DeleteAcls_result", c_void_p, c_void_p)
_create_acls = _fn("rd_kafka_CreateAcls_result_acls", POINTER(c_void_p), c_void_p, POINTER(c_size_t))
_acl_result_error = _fn("rd_kafka_acl_result_error", c_void_p, c_void_p)
_describe_acls = _fn("rd_kafka_DescribeAcls_result_acls", POINTER(c_void_p), c_void_p, POINTER(c_size_t))
_delete_responses = _fn("rd_kafka_DeleteAcls_result_responses", POINTER(c_void_p), c_void_p, POINTER(c_size_t))
_delete_error = _fn("rd_kafka_DeleteAcls_result_response_error", c_void_p, c_void_p)
_delete_matching = _fn("rd_kafka_DeleteAcls_result_response_matching_acls", POINTER(c_void_p), c_void_p,
                       POINTER(c_size_t))


class AclError(Exception):
    """A request-level or per-binding error: code is librdkafka's
    rd_kafka_resp_err_t (a Kafka error code when positive)."""

    def __init__(self, code, msg):
        super().__init__("%s: %s" % (_err2name(code).decode(), msg))
        self.code = code


def _s(b):
    return None if b is None else b.decode()


def _binding_tuple(p):
    """(restype, name, pattern, principal, host, operation, permission)."""
    return (_b_restype(p), _s(_b_name(p)), _b_pattern(p), _s(_b_principal(p)), _s(_b_host(p)),
            _b_operation(p), _b_permission(p))


def _array(fn, result):
    n = c_size_t()
    arr = fn(result, byref(n))
    return [arr[i] for i in range(n.value)]


class Admin:
    """A librdkafka producer handle used for its admin API only."""

    def __init__(self, conf):
        c = _conf_new()
        err = ctypes.create_string_buffer(512)
        for k, v in conf.items():
            if _conf_set(c, k.encode(), str(v).encode(), err, len(err)) != 0:
                raise ValueError("%s=%s: %s" % (k, v, err.value.decode()))
        self.rk = _new(RD_KAFKA_PRODUCER, c, err, len(err))
        if not self.rk:
            raise RuntimeError("rd_kafka_new: " + err.value.decode())
        self.q = _queue_new(self.rk)

    def close(self):
        _queue_destroy(self.q)
        _destroy(self.rk)

    def _wait(self, result_of, timeout_s):
        ev = _queue_poll(self.q, int(timeout_s * 1000))
        if not ev:
            raise RuntimeError("no admin result within %ss" % timeout_s)
        res = result_of(ev)
        code = _event_error(ev)
        if code or not res:
            msg = _s(_event_error_string(ev))
            _event_destroy(ev)
            raise AclError(code, msg)
        return ev, res

    def _build(self, new, b):
        err = ctypes.create_string_buffer(512)
        restype, name, pattern, principal, host, op, perm = b
        p = new(restype, None if name is None else name.encode(), pattern,
                None if principal is None else principal.encode(), None if host is None else host.encode(),
                op, perm, err, len(err))
        if not p:
            raise ValueError("binding %r: %s" % (b, err.value.decode()))
        return p

    def create_acls(self, bindings, timeout_s=30):
        """Create bindings (tuples as _binding_tuple returns); returns a
        list with None or an AclError per binding."""
        ps = [self._build(_binding_new, b) for b in bindings]
        arr = (c_void_p * len(ps))(*ps)
        _create(self.rk, arr, len(ps), None, self.q)
        try:
            ev, res = self._wait(_ev_create, timeout_s)
        finally:
            for p in ps:
                _binding_destroy(p)
        out = []
        for r in _array(_create_acls, res):
            e = _acl_result_error(r)
            out.append(AclError(_error_code(e), _s(_error_string(e))) if e else None)
        _event_destroy(ev)
        return out

    def describe_acls(self, flt, timeout_s=30):
        """The bindings matching the filter tuple; raises AclError."""
        p = self._build(_filter_new, flt)
        _describe(self.rk, p, None, self.q)
        try:
            ev, res = self._wait(_ev_describe, timeout_s)
        finally:
            _binding_destroy(p)
        out = [_binding_tuple(b) for b in _array(_describe_acls, res)]
        _event_destroy(ev)
        return out

    def delete_acls(self, filters, timeout_s=30):
        """Per filter, the bindings it deleted or an AclError."""
        ps = [self._build(_filter_new, f) for f in filters]
        arr = (c_void_p * len(ps))(*ps)
        _delete(self.rk, arr, len(ps), None, self.q)
        try:
            ev, res = self._wait(_ev_delete, timeout_s)
        finally:
            for p in ps:
                _binding_destroy(p)
        out = []
        for r in _array(_delete_responses, res):
            e = _delete_error(r)
            if e:
                out.append(AclError(_error_code(e), _s(_error_string(e))))
            else:
                out.append([_binding_tuple(b) for b in _array(_delete_matching, r)])
        _event_destroy(ev)
        return out
