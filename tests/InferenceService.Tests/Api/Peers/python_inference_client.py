"""python grpcio (gRPC C-core) as a client of chat.v1.Inference: message classes are built at run time from a
FileDescriptorSet written by the C# test, so no generated code is needed. Prints one JSON object per line."""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

target, descriptor_set, prompt = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")]
credential = [("authorization", "Bearer " + sys.argv[4])]
fds = descriptor_pb2.FileDescriptorSet()
with open(descriptor_set, "rb") as f:
    fds.ParseFromString(f.read())
pool = descriptor_pool.DescriptorPool()
for file in fds.file:
    pool.Add(file)
factory = message_factory.MessageFactory(pool)
M = lambda name: factory.GetPrototype(pool.FindMessageTypeByName("chat.v1." + name))

channel = grpc.insecure_channel(target)
generate = channel.unary_stream("/chat.v1.Inference/Generate", M("GenerateRequest").SerializeToString, M("GenerateResponse").FromString)
info = channel.unary_unary("/chat.v1.Inference/GetModelInfo", M("GetModelInfoRequest").SerializeToString, M("ModelInfo").FromString)

request = M("GenerateRequest")(prompt_token_ids=prompt, max_new_tokens=10, ignore_eos=True)
request.sampling.temperature = 0.0
steps, result = [], None
for message in generate(request, timeout=60, metadata=credential):
    if message.WhichOneof("kind") == "step":
        steps.append([t.token_id for t in message.step.tokens])
    else:
        result = {"tokens": list(message.result.sequences[0].token_ids), "finish": message.result.sequences[0].finish_reason,
                  "completion_tokens": message.result.usage.completion_tokens}
print(json.dumps({"scenario": "generate", "steps": steps, "result": result}), flush=True)

bad = M("GenerateRequest")(prompt_token_ids=prompt, max_new_tokens=4)
bad.sampling.top_p = 1.5
try:
    list(generate(bad, timeout=60, metadata=credential))
    print(json.dumps({"scenario": "invalid", "error": None}), flush=True)
except grpc.RpcError as e:
    print(json.dumps({"scenario": "invalid", "error": {"code": e.code().name, "details": e.details()}}), flush=True)

try:
    info(M("GetModelInfoRequest")(), timeout=60)
    print(json.dumps({"scenario": "no-credential", "error": None}), flush=True)
except grpc.RpcError as e:
    print(json.dumps({"scenario": "no-credential", "error": {"code": e.code().name, "details": e.details()}}), flush=True)

i = info(M("GetModelInfoRequest")(), timeout=60, metadata=credential)
print(json.dumps({"scenario": "info", "vocab_size": i.vocab_size, "context_length": i.context_length, "provider": i.execution_provider}), flush=True)
