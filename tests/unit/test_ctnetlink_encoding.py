import socket
import struct

from ctguard.kernel.ctnetlink import (
    CTA_STATUS,
    CTA_TIMEOUT,
    CTA_TUPLE_ORIG,
    CTA_TUPLE_REPLY,
    IPS_ASSURED,
    IPS_CONFIRMED,
    Flow,
    encode_new_entry,
    iter_attrs,
)


def test_new_entry_attributes_round_trip():
    body = encode_new_entry(Flow("198.18.0.1", "198.19.255.254", 1024, 443, timeout=77))
    attrs = dict(iter_attrs(body))
    assert {CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_TIMEOUT} <= set(attrs)
    status = struct.unpack(">I", attrs[CTA_STATUS])[0]
    assert status & IPS_ASSURED and status & IPS_CONFIRMED
    assert struct.unpack(">I", attrs[CTA_TIMEOUT])[0] == 77
    orig_ip = dict(iter_attrs(dict(iter_attrs(attrs[CTA_TUPLE_ORIG]))[1]))
    assert orig_ip[1] == socket.inet_aton("198.18.0.1")
    reply_ip = dict(iter_attrs(dict(iter_attrs(attrs[CTA_TUPLE_REPLY]))[1]))
    assert reply_ip[1] == socket.inet_aton("198.19.255.254")


def test_unassured_udp_has_no_protoinfo():
    body = encode_new_entry(Flow("fd00::1", "fd00::2", 5, 53, proto=17, assured=False))
    attrs = dict(iter_attrs(body))
    assert 4 not in attrs
    assert struct.unpack(">I", attrs[CTA_STATUS])[0] == IPS_CONFIRMED
    orig_ip = dict(iter_attrs(dict(iter_attrs(attrs[CTA_TUPLE_ORIG]))[1]))
    assert orig_ip[3] == socket.inet_pton(socket.AF_INET6, "fd00::1")
