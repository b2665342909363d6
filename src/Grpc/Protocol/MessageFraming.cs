using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;
using Google.Protobuf;

namespace ChatServices.Grpc.Protocol;

/// <summary>
/// Length-prefixed messages: each message on the wire is a 1-byte compressed flag, a 4-byte big-endian length
/// and that many bytes of (possibly compressed) protobuf. Shared by the server (request body) and the client
/// (response body).
/// </summary>
internal static class MessageFraming
{
    public const int HeaderSize = 5;

    public static void WriteHeader(Span<byte> destination, bool compressed, int length)
    {
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }

    /// <summary>
    /// Serializes one framed message into a pooled array. The caller writes <c>frame[..length]</c> and returns
    /// the array to <see cref="ArrayPool{T}.Shared"/>.
    /// </summary>
    public static byte[] RentFrame(IMessage message, int? maxSendSize, CompressionLevel? gzip, out int length)
    {
        var size = message.CalculateSize();
        CheckSendSize(size, maxSendSize);
        if (gzip is { } level)
        {
            var plain = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                message.WriteTo(plain.AsSpan(0, size));
                var compressed = MessageCompression.Compress(plain.AsSpan(0, size), level);
                var frame = ArrayPool<byte>.Shared.Rent(HeaderSize + compressed.Length);
                WriteHeader(frame, compressed: true, compressed.Length);
                compressed.CopyTo(frame.AsSpan(HeaderSize));
                length = HeaderSize + compressed.Length;
                return frame;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(plain);
            }
        }

        var array = ArrayPool<byte>.Shared.Rent(HeaderSize + size);
        WriteHeader(array, compressed: false, size);
        message.WriteTo(array.AsSpan(HeaderSize, size));
        length = HeaderSize + size;
        return array;
    }

    /// <summary>Writes one framed message into a pipe without copying it through an intermediate buffer
    /// (uncompressed), or through one pooled buffer (compressed). Does not flush.</summary>
    public static void Write(PipeWriter output, IMessage message, int? maxSendSize, CompressionLevel? gzip)
    {
        if (gzip is not null)
        {
            var frame = RentFrame(message, maxSendSize, gzip, out var length);
            try
            {
                output.Write(frame.AsSpan(0, length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(frame);
            }

            return;
        }

        var size = message.CalculateSize();
        CheckSendSize(size, maxSendSize);
        if (size > ContiguousWriteLimit)
        {
            // A large message is written segment by segment into the pipe's pooled buffers instead of asking
            // it for one contiguous (unpooled, large-object-heap) block.
            WriteHeader(output.GetSpan(HeaderSize), compressed: false, size);
            output.Advance(HeaderSize);
            message.WriteTo(output);
            return;
        }

        var span = output.GetSpan(HeaderSize + size);
        WriteHeader(span, compressed: false, size);
        message.WriteTo(span.Slice(HeaderSize, size));
        output.Advance(HeaderSize + size);
    }

    /// <summary>Messages up to this size are serialized into one span of the pipe (the fast path).</summary>
    private const int ContiguousWriteLimit = 64 * 1024;

    private static void CheckSendSize(int size, int? maxSendSize)
    {
        if (size > maxSendSize)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size of {maxSendSize} bytes."));
        }
    }
}

/// <summary>
/// Reads length-prefixed messages from a pipe (the server's request body, the client's response body).
/// Invariants: a message is parsed only once all of it is buffered; a length over the receive limit is refused
/// from its 5-byte header, before any of its body is buffered, so an oversize prefix never costs memory.
/// </summary>
internal sealed class MessageReader(PipeReader input, int maxReceiveSize, string? encoding)
{
    /// <summary>The next message, or null at the clean end of the stream. Throws <see cref="RpcException"/>
    /// (INTERNAL, RESOURCE_EXHAUSTED, UNIMPLEMENTED) for a malformed stream.</summary>
    public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start);
                throw new OperationCanceledException(cancellationToken);
            }

            T? message;
            bool complete;
            try
            {
                complete = TryParse(ref buffer, parser, out message);
            }
            catch
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                throw;
            }

            if (complete)
            {
                input.AdvanceTo(buffer.Start);
                return message;
            }

            if (result.IsCompleted)
            {
                var leftover = buffer.Length;
                input.AdvanceTo(buffer.End);
                if (leftover == 0)
                {
                    return null;
                }

                throw new RpcException(new Status(StatusCode.Internal, "Incomplete message: the stream ended inside a length-prefixed message."));
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>On success, advances <paramref name="buffer"/> past the message.</summary>
    private bool TryParse<T>(ref ReadOnlySequence<byte> buffer, MessageParser<T> parser, out T? message)
        where T : class, IMessage<T>
    {
        message = null;
        if (buffer.Length < MessageFraming.HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[MessageFraming.HeaderSize];
        buffer.Slice(0, MessageFraming.HeaderSize).CopyTo(header);
        var flag = header[0];
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (flag > 1)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"Invalid compressed flag {flag} in a message header."));
        }

        if (length > (uint)maxReceiveSize)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Received message exceeds the maximum configured message size of {maxReceiveSize} bytes."));
        }

        if (buffer.Length < MessageFraming.HeaderSize + length)
        {
            return false;
        }

        var payload = buffer.Slice(MessageFraming.HeaderSize, length);
        try
        {
            if (flag == 1)
            {
                if (!MessageCompression.IsGzip(encoding))
                {
                    throw new RpcException(new Status(StatusCode.Internal,
                        encoding is null or GrpcProtocol.IdentityEncoding
                            ? "A compressed message arrived without a grpc-encoding."
                            : $"Unsupported grpc-encoding '{encoding}'."));
                }

                message = parser.ParseFrom(MessageCompression.Decompress(payload, maxReceiveSize));
            }
            else
            {
                message = parser.ParseFrom(payload);
            }
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new RpcException(new Status(StatusCode.Internal, "Failed to deserialize a message: " + ex.Message));
        }

        buffer = buffer.Slice(payload.End);
        return true;
    }
}
