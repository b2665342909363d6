using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// Writes Server-Sent Events (<c>text/event-stream</c>) to an HTTP response: one JSON object per event on a single
/// <c>data:</c> line, each event flushed at once so the client sees tokens as they are generated.
/// </summary>
/// <remarks>
/// One <see cref="Utf8JsonWriter"/> is reused for every event and writes straight into the response pipe, so a
/// token costs no intermediate string or buffer. Invariant: compact JSON never contains a raw line break
/// (strings escape them), so every event is exactly one <c>data:</c> line followed by a blank line.
/// </remarks>
public sealed class ServerSentEventWriter : IDisposable
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    private readonly HttpResponse _response;
    private readonly PipeWriter _pipe;
    private readonly Utf8JsonWriter _json;

    public ServerSentEventWriter(HttpResponse response)
    {
        _response = response;
        _pipe = response.BodyWriter;
        _json = new Utf8JsonWriter(_pipe, OpenAiJson.WriterOptions);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        // Reverse proxies (nginx) buffer responses unless told not to; a buffered stream is not a stream.
        response.Headers["X-Accel-Buffering"] = "no";
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    /// <summary>Starts an event (optionally named: <c>event: name</c>) and returns the writer for its JSON payload.</summary>
    public Utf8JsonWriter BeginEvent(string? eventName = null)
    {
        if (eventName is not null)
        {
            WriteRaw("event: "u8);
            WriteRaw(System.Text.Encoding.UTF8.GetBytes(eventName));
            WriteRaw("\n"u8);
        }
        WriteRaw(DataPrefix);
        _json.Reset(_pipe);
        return _json;
    }

    /// <summary>Ends the event begun by <see cref="BeginEvent"/> and sends it.</summary>
    public ValueTask<FlushResult> EndEventAsync(CancellationToken cancellationToken)
    {
        _json.Flush();
        WriteRaw(EventEnd);
        return _pipe.FlushAsync(cancellationToken);
    }

    /// <summary>An SSE comment (<c>: keep-alive</c>): clients ignore it; proxies see traffic on an idle stream.</summary>
    public ValueTask<FlushResult> WriteKeepAliveAsync(CancellationToken cancellationToken)
    {
        WriteRaw(KeepAlive);
        return _pipe.FlushAsync(cancellationToken);
    }

    /// <summary>The OpenAI end-of-stream sentinel, <c>data: [DONE]</c>.</summary>
    public ValueTask<FlushResult> WriteDoneAsync(CancellationToken cancellationToken)
    {
        WriteRaw(Done);
        return _pipe.FlushAsync(cancellationToken);
    }

    /// <summary>An error after the stream has started, in OpenAI's shape: <c>data: {"error":{...}}</c>.</summary>
    public ValueTask<FlushResult> WriteErrorAsync(ApiException error, CancellationToken cancellationToken)
    {
        error.WriteTo(BeginEvent());
        return EndEventAsync(cancellationToken);
    }

    private void WriteRaw(ReadOnlySpan<byte> bytes) => _pipe.Write(bytes);

    public void Dispose() => _json.Dispose();
}
