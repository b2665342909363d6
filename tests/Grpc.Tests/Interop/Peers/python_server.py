"""python grpcio (gRPC C-core) serving chatservices.testing.v1.Echo for the client under test, with generic
handlers over messages built from the descriptor set. Replies are gzip-compressed (the client must inflate
them). Prints its port on the first line of stdout, then serves until stdin closes."""
import sys
import threading
import time
from concurrent import futures

import grpc

from peer_messages import Messages, TRAILER_BIN

descriptor_set = sys.argv[1]
m = Messages(descriptor_set)
Req, Reply = m["chatservices.testing.v1.EchoRequest"], m["chatservices.testing.v1.EchoReply"]
cancelled = {}
lock = threading.Lock()
CODES = {c.value[0]: c for c in grpc.StatusCode}


def record_cancel(id):
    with lock:
        cancelled.setdefault(id, threading.Event()).set()


def delay(request, context):
    done = threading.Event()
    # Runs when the RPC ends, cancellation included; returns False when it has already ended.
    if context.add_callback(done.set):
        done.wait(request.delay_ms / 1000.0)
    if not context.is_active():
        record_cancel(request.message)
        return False
    return True


def reply(request, index, context):
    remaining = context.time_remaining()
    return Reply(message=request.message, index=index, payload_size=len(request.payload),
                 payload=bytes(request.response_size),
                 deadline_remaining_ms=-1 if remaining is None or remaining > 1e9 else int(remaining * 1000))


def echo_headers(context):
    md = dict(context.invocation_metadata())
    initial, trailing = [], []
    if "x-echo" in md:
        initial.append(("x-echo", md["x-echo"])); trailing.append(("x-echo-trailer", md["x-echo"]))
    if "x-echo-bin" in md:
        initial.append(("x-echo-bin", md["x-echo-bin"])); trailing.append(("x-echo-trailer-bin", md["x-echo-bin"]))
    if initial:
        context.send_initial_metadata(initial)
        context.set_trailing_metadata(trailing)


def fail(request, context):
    if request.fail_code:
        context.set_trailing_metadata((("x-trailer", "trailer-value"), ("x-trailer-bin", TRAILER_BIN)))
        context.abort(CODES[request.fail_code], request.fail_message)


def behave(request, context):
    if request.delay_ms and not delay(request, context):
        return False
    if request.throw_exception:
        raise RuntimeError("secret internal detail")
    if request.abort:
        context.cancel()
        return False
    fail(request, context)
    return True


def unary(request, context):
    if request.message.startswith("was-cancelled:"):
        with lock:
            event = cancelled.setdefault(request.message[len("was-cancelled:"):], threading.Event())
        return Reply(message="yes" if event.wait(5) else "no")
    echo_headers(context)
    if not behave(request, context):
        return Reply()
    return reply(request, 0, context)


def server_stream(request, context):
    echo_headers(context)
    for i in range(request.count):
        if i > 0 and request.delay_ms and not delay(request, context):
            return
        yield reply(request, i, context)
    fail(request, context)


def client_stream(requests, context):
    messages, size = [], 0
    for r in requests:
        messages.append(r.message); size += len(r.payload)
        fail(r, context)
    return Reply(message=",".join(messages), index=len(messages), payload_size=size)


def duplex(requests, context):
    for i, r in enumerate(requests):
        if not behave(r, context):
            return
        yield reply(r, i, context)


handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, Req.FromString, Reply.SerializeToString),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, Req.FromString, Reply.SerializeToString),
    "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, Req.FromString, Reply.SerializeToString),
    "Duplex": grpc.stream_stream_rpc_method_handler(duplex, Req.FromString, Reply.SerializeToString),
}
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
compression = grpc.Compression.NoCompression if "--no-gzip" in sys.argv else grpc.Compression.Gzip
server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), compression=compression,
                     options=[("grpc.so_reuseport", 0)])
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("chatservices.testing.v1.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()  # the test closes stdin (or exits) to stop the server
server.stop(0)
