using System.Buffers;
using System.Net;
using System.Net.Http.Headers;

namespace ChatServices.Grpc.Client;

/// <summary>The body of a unary or server-streaming request: one framed message, serialized once into a pooled
/// buffer so its length is known (sent as content-length).</summary>
internal sealed class FramedMessageContent : HttpContent
{
    private byte[]? _frame;
    private readonly int _length;

    public FramedMessageContent(byte[] frame, int length, MediaTypeHeaderValue contentType)
    {
        _frame = frame;
        _length = length;
        Headers.ContentType = contentType;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        stream.WriteAsync(_frame.AsMemory(0, _length), cancellationToken).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = _length;
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _frame, null) is { } frame)
        {
            ArrayPool<byte>.Shared.Return(frame);
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// The body of a client-streaming or duplex request: stays open while the caller writes. HttpClient hands over
/// the request stream through <see cref="SerializeToStreamAsync(Stream, TransportContext?, CancellationToken)"/>
/// and keeps the body open until the task it returns completes — which <see cref="Complete"/> does (half-close).
/// </summary>
internal sealed class StreamingRequestContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public StreamingRequestContent(MediaTypeHeaderValue contentType) => Headers.ContentType = contentType;

    /// <summary>The request stream, once HttpClient has sent the headers and started the body.</summary>
    public Task<Stream> StreamAsync => _stream.Task;

    public void Complete() => _done.TrySetResult();

    /// <summary>The call ended: writers waiting for the stream fail with <paramref name="error"/>.</summary>
    public void Abort(Exception error)
    {
        _stream.TrySetException(error);
        _done.TrySetResult();
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _stream.TrySetResult(stream);
        // HttpClient cancels this token when the response ends before the request body does.
        cancellationToken.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), _done);
        return _done.Task;
    }

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}
