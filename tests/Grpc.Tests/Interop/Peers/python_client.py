"""python grpcio (gRPC C-core) as a client of the server under test. Runs every scenario once and prints one
JSON object per line: {"scenario": ..., "result": {...}} or {"scenario": ..., "error": "..."}. The C# tests
assert on these observations."""
import json
import queue
import sys
import traceback
import uuid

import grpc

from peer_messages import ECHO, Messages

target, descriptor_set = sys.argv[1], sys.argv[2]
m = Messages(descriptor_set)
Req, Reply = m["chatservices.testing.v1.EchoRequest"], m["chatservices.testing.v1.EchoReply"]
HReq, HResp = m["grpc.health.v1.HealthCheckRequest"], m["grpc.health.v1.HealthCheckResponse"]
channel = grpc.insecure_channel(target)
ser, de = Req.SerializeToString, Reply.FromString
unary = channel.unary_unary(ECHO + "Unary", ser, de)
server_stream = channel.unary_stream(ECHO + "ServerStream", ser, de)
client_stream = channel.stream_unary(ECHO + "ClientStream", ser, de)
duplex = channel.stream_stream(ECHO + "Duplex", ser, de)
status_name = lambda code: code.name


def error_of(e):
    return {"code": status_name(e.code()), "details": e.details(),
            "trailers": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in (e.trailing_metadata() or ())}}


def expect_error(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return error_of(e)
    return {"code": "OK"}


def was_cancelled(id):
    return unary(Req(message="was-cancelled:" + id), timeout=10).message


def s_unary():
    reply, call = unary.with_call(Req(message="hello"), timeout=10)
    return {"message": reply.message, "code": status_name(call.code())}


def s_server_stream():
    return {"indexes": [r.index for r in server_stream(Req(message="s", count=50), timeout=10)]}


def s_client_stream():
    reply = client_stream(iter([Req(message=x) for x in "abc"]), timeout=10)
    return {"message": reply.message, "index": reply.index}


def s_duplex():
    q = queue.Queue()

    def requests():
        while True:
            item = q.get()
            if item is None:
                return
            yield item

    responses = duplex(requests(), timeout=10)
    seen = []
    for i in range(5):
        q.put(Req(message="m%d" % i))
        seen.append(next(responses).message)  # each reply arrives before the next request is sent
    q.put(None)
    rest = list(responses)
    return {"messages": seen, "after_close": len(rest)}


def s_error_with_trailers():
    return expect_error(lambda: unary(Req(fail_code=5, fail_message="nöt found: 100% gone"), timeout=10))


def s_stream_error_after_messages():
    got = []
    try:
        for r in server_stream(Req(count=3, fail_code=10, fail_message="late"), timeout=10):
            got.append(r.index)
    except grpc.RpcError as e:
        return dict(error_of(e), received=len(got))
    return {"code": "OK", "received": len(got)}


def s_handler_exception():
    return expect_error(lambda: unary(Req(throw_exception=True), timeout=10))


def s_metadata():
    reply, call = unary.with_call(Req(message="md"), timeout=10,
                                  metadata=(("x-echo", "value-1"), ("x-echo-bin", b"\x01\x02\x03\x00\xff")))
    initial = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in call.initial_metadata()}
    trailing = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in call.trailing_metadata()}
    return {"initial": initial, "trailing": trailing}


def s_deadline_sent():
    return {"remaining_ms": unary(Req(message="d"), timeout=30).deadline_remaining_ms}


def s_deadline_exceeded():
    id = str(uuid.uuid4())
    result = expect_error(lambda: unary(Req(message=id, delay_ms=10000), timeout=1.0))
    result["handler_cancelled"] = was_cancelled(id)
    return result


def s_cancellation():
    id = str(uuid.uuid4())
    call = server_stream(Req(message=id, count=2, delay_ms=10000), timeout=30)
    first = next(call).index
    call.cancel()
    return {"first": first, "code": status_name(call.code()), "handler_cancelled": was_cancelled(id)}


def s_server_abort():
    return expect_error(lambda: unary(Req(abort=True), timeout=10))


def s_unimplemented():
    method = expect_error(lambda: channel.unary_unary(ECHO + "Nope", ser, de)(Req(), timeout=10))
    service = expect_error(lambda: channel.unary_unary("/no.such.Service/Call", ser, de)(Req(), timeout=10))
    return {"method": method["code"], "service": service["code"]}


def s_gzip():
    payload = bytes(100_000)
    reply = unary(Req(message="zip", payload=payload, response_size=100_000), timeout=10, compression=grpc.Compression.Gzip)
    return {"payload_size": reply.payload_size, "reply_payload": len(reply.payload), "request_encoding": reply.request_encoding}


def s_size_limit():
    limit = 4 * 1024 * 1024
    near = unary(Req(payload=bytes(limit - 100), response_size=limit - 100), timeout=30)
    over = expect_error(lambda: unary(Req(payload=bytes(limit + 100)), timeout=30))
    return {"near_request": near.payload_size, "near_reply": len(near.payload), "over": over["code"]}


def s_health():
    check = channel.unary_unary("/grpc.health.v1.Health/Check", HReq.SerializeToString, HResp.FromString)
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch", HReq.SerializeToString, HResp.FromString)
    name = lambda s: HResp.ServingStatus.Name(s)
    overall = name(check(HReq(service=""), timeout=10).status)
    echo = name(check(HReq(service="chatservices.testing.v1.Echo"), timeout=10).status)
    unknown = expect_error(lambda: check(HReq(service="no.such.Service"), timeout=10))["code"]
    stream = watch(HReq(service="watched.python"), timeout=20)
    seen = [name(next(stream).status)]
    unary(Req(message="set-health:watched.python:SERVING"), timeout=10)
    seen.append(name(next(stream).status))
    unary(Req(message="set-health:watched.python:NOT_SERVING"), timeout=10)
    seen.append(name(next(stream).status))
    stream.cancel()
    return {"overall": overall, "echo": echo, "unknown": unknown, "watch": seen}


def reflection(version):
    RReq = m["grpc.reflection.%s.ServerReflectionRequest" % version]
    RResp = m["grpc.reflection.%s.ServerReflectionResponse" % version]
    info = channel.stream_stream("/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
                                 RReq.SerializeToString, RResp.FromString)
    responses = list(info(iter([RReq(list_services=""), RReq(file_containing_symbol="chatservices.testing.v1.Echo")]), timeout=10))
    from google.protobuf import descriptor_pb2
    file = descriptor_pb2.FileDescriptorProto.FromString(responses[1].file_descriptor_response.file_descriptor_proto[0])
    return {"services": [s.name for s in responses[0].list_services_response.service],
            "methods": [meth.name for meth in file.service[0].method]}


scenarios = {
    "unary": s_unary, "server_stream": s_server_stream, "client_stream": s_client_stream, "duplex": s_duplex,
    "error_with_trailers": s_error_with_trailers, "stream_error_after_messages": s_stream_error_after_messages,
    "handler_exception": s_handler_exception, "metadata": s_metadata, "deadline_sent": s_deadline_sent,
    "deadline_exceeded": s_deadline_exceeded, "cancellation": s_cancellation, "server_abort": s_server_abort,
    "unimplemented": s_unimplemented, "gzip": s_gzip, "size_limit": s_size_limit, "health": s_health,
    "reflection_v1alpha": lambda: reflection("v1alpha"), "reflection_v1": lambda: reflection("v1"),
}
for name, fn in scenarios.items():
    try:
        print(json.dumps({"scenario": name, "result": fn()}), flush=True)
    except Exception as e:
        print(json.dumps({"scenario": name, "error": "".join(traceback.format_exception(e))}), flush=True)
