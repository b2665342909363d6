"""Message classes for the Echo, health and reflection protos, built at run time from a FileDescriptorSet
(written by the C# test from the descriptors it compiled), so no generated python code is needed."""
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


class Messages:
    def __init__(self, descriptor_set_path):
        fds = descriptor_pb2.FileDescriptorSet()
        with open(descriptor_set_path, "rb") as f:
            fds.ParseFromString(f.read())
        self.pool = descriptor_pool.DescriptorPool()
        for file in fds.file:
            self.pool.Add(file)
        self.factory = message_factory.MessageFactory(self.pool)

    def __getitem__(self, full_name):
        return self.factory.GetPrototype(self.pool.FindMessageTypeByName(full_name))


ECHO = "/chatservices.testing.v1.Echo/"
TRAILER_BIN = b"\x00\x01\x02\xfa\xff"


def log(*args):
    print(*args, file=sys.stderr, flush=True)
