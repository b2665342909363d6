using System.IO.Compression;
using Grpc.Core;
using Grpc.Net.Compression;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// gzip for gRPC messages, as grpc-dotnet's <see cref="GzipCompressionProvider"/>, except that a request message
/// whose gzip data is corrupt ends the call with INTERNAL, as the gRPC status-code table prescribes ("could not
/// decompress, but compression algorithm supported"). grpc-dotnet's own provider lets the InvalidDataException
/// through, which its server reports as UNKNOWN "Exception was thrown by handler." (and logs as a handler error).
/// Put it in <c>GrpcServiceOptions.CompressionProviders</c> in place of the default gzip provider.
/// </summary>
public sealed class GrpcGzipCompression(CompressionLevel defaultLevel = CompressionLevel.Fastest) : ICompressionProvider
{
    private readonly GzipCompressionProvider _gzip = new(defaultLevel);

    public string EncodingName => _gzip.EncodingName;

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) => _gzip.CreateCompressionStream(stream, compressionLevel);

    public Stream CreateDecompressionStream(Stream stream) => new CorruptDataIsInternal(_gzip.CreateDecompressionStream(stream));

    /// <summary>Reads through the inflating stream, turning its InvalidDataException into INTERNAL.</summary>
    private sealed class CorruptDataIsInternal(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            try
            {
                return inner.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private static RpcException Corrupt(InvalidDataException e) =>
            new(new Status(StatusCode.Internal, "The request message could not be decompressed (corrupt gzip data).", e));
    }
}
