using System.Buffers;
using System.IO.Compression;

namespace ChatServices.Grpc.Protocol;

/// <summary>
/// Per-message compression (<c>grpc-encoding</c>). gzip is the one algorithm every gRPC implementation
/// offers; "identity" means none. Decompression is bounded: a small compressed message that inflates past the
/// receive limit is refused as RESOURCE_EXHAUSTED instead of being inflated into memory.
/// </summary>
internal static class MessageCompression
{
    public static bool IsSupported(string? encoding) =>
        encoding is null
        || encoding.Equals(GrpcProtocol.IdentityEncoding, StringComparison.OrdinalIgnoreCase)
        || encoding.Equals(GrpcProtocol.GzipEncoding, StringComparison.OrdinalIgnoreCase);

    public static bool IsGzip(string? encoding) => encoding is not null && encoding.Equals(GrpcProtocol.GzipEncoding, StringComparison.OrdinalIgnoreCase);

    /// <summary>Inflates a gzip payload into a new array of at most <paramref name="maxSize"/> bytes.</summary>
    public static byte[] Decompress(ReadOnlySequence<byte> payload, int maxSize)
    {
        using var input = new MemoryStream(payload.ToArray(), writable: false);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = gzip.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (output.Length + read > maxSize)
                {
                    throw new RpcException(new Status(StatusCode.ResourceExhausted,
                        $"Received message exceeds the maximum configured message size of {maxSize} bytes after decompression."));
                }

                output.Write(buffer, 0, read);
            }
        }
        catch (InvalidDataException)
        {
            throw new RpcException(new Status(StatusCode.Internal, "Failed to decompress a gzip message."));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return output.ToArray();
    }

    public static byte[] Compress(ReadOnlySpan<byte> message, CompressionLevel level)
    {
        using var output = new MemoryStream(message.Length / 2 + 32);
        using (var gzip = new GZipStream(output, level, leaveOpen: true))
        {
            gzip.Write(message);
        }

        return output.ToArray();
    }
}
