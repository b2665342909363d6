using System.IO.Compression;

namespace ChatServices.Grpc.Server;

/// <summary>Server-wide settings (<c>services.AddGrpcServer(o => ...)</c>, or the <c>Grpc</c> configuration section).</summary>
public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted, in bytes (after decompression); larger ones end the call with
    /// RESOURCE_EXHAUSTED. Default 4 MiB, as in every gRPC implementation.</summary>
    public int MaxReceiveMessageSize { get; set; } = Protocol.GrpcProtocol.DefaultMaxReceiveMessageSize;

    /// <summary>Largest response message sent, in bytes; null for no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>"gzip" to compress every response message for clients that advertise gzip in
    /// <c>grpc-accept-encoding</c>; null (default) compresses only replies to clients that sent gzip themselves.</summary>
    public string? ResponseCompressionAlgorithm { get; set; }

    public CompressionLevel ResponseCompressionLevel { get; set; } = CompressionLevel.Fastest;

    /// <summary>Put a handler exception's message in <c>grpc-message</c>. Off by default: clients see only
    /// "Exception was thrown by handler." and internals stay in the server log.</summary>
    public bool EnableDetailedErrors { get; set; }
}
