using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;

namespace ChatServices.Grpc.Tests.Infrastructure;

/// <summary>Unary methods with Echo's messages on any service and method name, for calls to what is not served.</summary>
internal static class EchoMethods
{
    private static readonly Marshaller<EchoRequest> Request = Marshallers.Create(m => m.ToByteArray(), EchoRequest.Parser.ParseFrom);
    private static readonly Marshaller<EchoReply> Reply = Marshallers.Create(m => m.ToByteArray(), EchoReply.Parser.ParseFrom);

    public static Method<EchoRequest, EchoReply> Unary(string service, string method) => new(MethodType.Unary, service, method, Request, Reply);
}
