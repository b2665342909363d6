using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;

namespace ChatServices.Grpc.Tests.BadInput;

/// <summary>
/// Malformed requests sent as raw HTTP/2 (and HTTP/1.1) bytes to our server: each gets the right status (or a
/// plain HTTP error where the request is not gRPC at all), the server keeps serving, and repeated bad input
/// does not grow its memory. Also the wire-level facts a gRPC client hides: server-side deadline enforcement and
/// compressed replies.
/// </summary>
public sealed class BadInputTests(TestServerFixture fixture) : IClassFixture<TestServerFixture>, IDisposable
{
    private const string UnaryPath = "/chatservices.testing.v1.Echo/Unary";
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = fixture.Server.Address };

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Truncated_message_is_INTERNAL()
    {
        var frame = Frame(new EchoRequest { Message = "hello" }.ToByteArray());
        var result = await SendAsync(frame[..^2]);
        Assert.Equal(StatusCode.Internal, result.Status);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Truncated_header_is_INTERNAL()
    {
        var result = await SendAsync([0, 0, 0]);
        Assert.Equal(StatusCode.Internal, result.Status);
    }

    [Fact]
    public async Task Length_prefix_longer_than_the_body_is_INTERNAL()
    {
        var body = new EchoRequest { Message = "hello" }.ToByteArray();
        var frame = Frame(body);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)body.Length + 10);
        Assert.Equal(StatusCode.Internal, (await SendAsync(frame)).Status);
        await AssertStillServingAsync();
    }

    /// <summary>grpc-dotnet parses the 2-byte message before it looks at what follows, and the protobuf parser
    /// fails first: UNKNOWN "Exception was thrown by handler." (see <see cref="Garbage_protobuf_is_UNKNOWN"/>).</summary>
    [Fact]
    public async Task Length_prefix_shorter_than_the_body_is_UNKNOWN()
    {
        // The prefix covers 2 bytes of the message; the rest reads as a second, incomplete message header.
        var body = new EchoRequest { Message = "hello world" }.ToByteArray();
        var frame = Frame(body);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), 2);
        Assert.Equal(StatusCode.Unknown, (await SendAsync(frame)).Status);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Oversize_length_prefix_is_RESOURCE_EXHAUSTED_before_the_body_is_read()
    {
        // 64 MiB, over the 4 MiB limit. (A prefix of 2 GiB or more, which this test used to send, is refused
        // earlier by grpc-dotnet and answered differently: see the next test.)
        var frame = new byte[5 + 1024];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), 64 * 1024 * 1024);
        var result = await SendAsync(frame);
        Assert.Equal(StatusCode.ResourceExhausted, result.Status);
        await AssertStillServingAsync();
    }

    /// <summary>
    /// A length prefix of 2^31 or more: grpc-dotnet rejects the header itself (IOException "Message too large")
    /// before comparing with MaxReceiveMessageSize, and answers UNKNOWN "Exception was thrown by handler.".
    /// The gRPC status-code table asks RESOURCE_EXHAUSTED for a message over the configured limit, so this is a
    /// grpc-dotnet deviation, not configurable; what matters here still holds: the call fails from the 5-byte
    /// header alone, without reading or allocating the body, and the server keeps serving.
    /// </summary>
    [Fact]
    public async Task Length_prefix_beyond_2_GiB_is_refused_from_the_header_as_UNKNOWN()
    {
        var frame = new byte[5 + 1024];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), uint.MaxValue);
        var result = await SendAsync(frame);
        Assert.Equal(StatusCode.Unknown, result.Status);
        Assert.Empty(result.Body);
        await AssertStillServingAsync();
    }

    /// <summary>grpc-dotnet deserializes the request outside the handler but reports the parser's exception as
    /// a handler's: UNKNOWN "Exception was thrown by handler.". The gRPC status-code table prescribes no code
    /// for a request the server cannot parse (INTERNAL is only listed for the client parsing a response), and
    /// UNKNOWN is its code for an exception on the server, so this stays within the spec.</summary>
    [Fact]
    public async Task Garbage_protobuf_is_UNKNOWN()
    {
        var result = await SendAsync(Frame([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]));
        Assert.Equal(StatusCode.Unknown, result.Status);
        Assert.DoesNotContain("varint", result.Message);
        await AssertStillServingAsync();
    }

    /// <summary>grpc-dotnet throws InvalidDataException on a Compressed-Flag other than 0 or 1 and answers
    /// UNKNOWN "Exception was thrown by handler.". The spec (PROTOCOL-HTTP2) defines only the values 0 and 1 and
    /// names no status for others; the call fails and the server keeps serving.</summary>
    [Fact]
    public async Task Invalid_compressed_flag_is_UNKNOWN()
    {
        var frame = Frame(new EchoRequest { Message = "x" }.ToByteArray());
        frame[0] = 7;
        Assert.Equal(StatusCode.Unknown, (await SendAsync(frame)).Status);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Compressed_message_without_grpc_encoding_is_INTERNAL()
    {
        var frame = Frame(Gzip(new EchoRequest { Message = "x" }.ToByteArray()), compressed: true);
        Assert.Equal(StatusCode.Internal, (await SendAsync(frame)).Status);
    }

    [Fact]
    public async Task Unsupported_grpc_encoding_is_UNIMPLEMENTED_and_lists_what_is_accepted()
    {
        var result = await SendAsync(Frame(new EchoRequest { Message = "x" }.ToByteArray(), compressed: true), encoding: "snappy");
        Assert.Equal(StatusCode.Unimplemented, result.Status);
        Assert.Contains("gzip", result.Response.Headers.GetValues("grpc-accept-encoding").Single());
    }

    [Fact]
    public async Task Corrupt_gzip_is_INTERNAL()
    {
        var result = await SendAsync(Frame([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7], compressed: true), encoding: "gzip");
        Assert.Equal(StatusCode.Internal, result.Status);
    }

    [Fact]
    public async Task Gzip_bomb_is_RESOURCE_EXHAUSTED_without_inflating_it()
    {
        var bomb = Gzip(new EchoRequest { Payload = ByteString.CopyFrom(new byte[8 * 1024 * 1024]) }.ToByteArray());
        Assert.True(bomb.Length < 64 * 1024);
        var result = await SendAsync(Frame(bomb, compressed: true), encoding: "gzip");
        Assert.Equal(StatusCode.ResourceExhausted, result.Status);
        await AssertStillServingAsync();
    }

    /// <summary>grpc-dotnet compresses replies only when ResponseCompressionAlgorithm is set (see
    /// <see cref="Server_configured_for_gzip_compresses_replies_to_clients_that_accept_it"/>); it does not mirror the
    /// request's encoding. The spec (compression.md) allows that: compression is asymmetric, and a server may
    /// answer a compressed request uncompressed.</summary>
    [Fact]
    public async Task Gzip_request_is_answered_uncompressed_unless_the_server_compresses_replies()
    {
        var result = await SendAsync(Frame(Gzip(new EchoRequest { Message = "zip", ResponseSize = 10_000 }.ToByteArray()), compressed: true), encoding: "gzip");
        Assert.Equal(StatusCode.OK, result.Status);
        Assert.False(result.Response.Headers.Contains("grpc-encoding"));
        Assert.Equal(0, result.Body[0]);
        var length = (int)BinaryPrimitives.ReadUInt32BigEndian(result.Body.AsSpan(1));
        var reply = EchoReply.Parser.ParseFrom(result.Body, 5, length);
        Assert.Equal("zip", reply.Message);
        Assert.Equal(10_000, reply.Payload.Length);
    }

    [Fact]
    public async Task Server_enforces_grpc_timeout_on_its_own()
    {
        // No client-side deadline here: only the header. The server must end the call by itself.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await SendAsync(Frame(new EchoRequest { Message = Guid.NewGuid().ToString(), DelayMs = 20_000 }.ToByteArray()), timeout: "200m");
        Assert.Equal(StatusCode.DeadlineExceeded, result.Status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Server_answers_DEADLINE_EXCEEDED_on_time_even_when_the_handler_ignores_cancellation()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await SendAsync(Frame(new EchoRequest { Message = "stuck", DelayMs = 4_000, IgnoreCancellation = true }.ToByteArray()), timeout: "200m");
        Assert.Equal(StatusCode.DeadlineExceeded, result.Status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Server_stream_past_its_deadline_ends_with_DEADLINE_EXCEEDED_after_the_messages_sent()
    {
        using var request = Request(new ByteArrayContent(Frame(new EchoRequest { Count = 100, DelayMs = 50, IgnoreCancellation = true }.ToByteArray())));
        request.RequestUri = new Uri("/chatservices.testing.v1.Echo/ServerStream", UriKind.Relative);
        request.Headers.TryAddWithoutValidation("grpc-timeout", "300m");
        using var response = await _http.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal("4", response.TrailingHeaders.GetValues("grpc-status").Single());
        Assert.True(body.Length > 0, "messages written before the deadline were delivered");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Server_configured_for_gzip_compresses_replies_to_clients_that_accept_it()
    {
        await using var server = await TestServer.StartAsync(responseCompression: "gzip");
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = server.Address };
        using var request = Request(new ByteArrayContent(Frame(new EchoRequest { Message = "plain", ResponseSize = 10_000 }.ToByteArray())));
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal("gzip", response.Headers.GetValues("grpc-encoding").Single());
        Assert.Equal(1, body[0]);
        Assert.Equal("0", response.TrailingHeaders.GetValues("grpc-status").Single());
    }

    [Fact]
    public async Task Error_before_any_message_is_answered_Trailers_Only()
    {
        var result = await SendAsync(Frame(new EchoRequest { FailCode = (int)StatusCode.NotFound, FailMessage = "gone" }.ToByteArray()));
        Assert.Equal("5", result.Response.Headers.GetValues("grpc-status").Single());
        Assert.Equal("gone", result.Response.Headers.GetValues("grpc-message").Single());
        Assert.Equal("trailer-value", result.Response.Headers.GetValues("x-trailer").Single());
        Assert.Empty(result.Body);
        Assert.False(result.Response.TrailingHeaders.Contains("grpc-status"));
    }

    [Fact]
    public async Task Unary_request_without_a_message_is_INTERNAL()
    {
        Assert.Equal(StatusCode.Internal, (await SendAsync([])).Status);
    }

    [Fact]
    public async Task Unary_request_with_two_messages_is_INTERNAL()
    {
        var one = Frame(new EchoRequest { Message = "a" }.ToByteArray());
        Assert.Equal(StatusCode.Internal, (await SendAsync([.. one, .. one])).Status);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("text/plain")]
    [InlineData("application/grpc-web")]
    public async Task Wrong_content_type_is_415(string contentType)
    {
        var result = await SendAsync(Frame(new EchoRequest().ToByteArray()), contentType: contentType);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, result.Response.StatusCode);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Accepts_application_grpc_plus_proto()
    {
        var result = await SendAsync(Frame(new EchoRequest { Message = "p" }.ToByteArray()), contentType: "application/grpc+proto");
        Assert.Equal(StatusCode.OK, result.Status);
    }

    [Fact]
    public async Task Http11_to_the_grpc_port_is_refused_and_the_server_keeps_serving()
    {
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, fixture.Server.Address.Port);
            var stream = client.GetStream();
            var request = $"POST {UnaryPath} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
            // Kestrel's HTTP/2-only endpoint answers with a GOAWAY (or nothing) and closes the connection.
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            int read;
            var total = 0;
            while ((read = await stream.ReadAsync(buffer, cts.Token)) > 0)
            {
                total += read;
            }

            Assert.DoesNotContain("HTTP/1.1 200", Encoding.ASCII.GetString(buffer, 0, Math.Min(total, buffer.Length)));
        }

        using var http1 = new HttpRequestMessage(HttpMethod.Post, UnaryPath) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        http1.Content = new ByteArrayContent(Frame(new EchoRequest().ToByteArray()));
        http1.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        // Kestrel recognises an HTTP/1.x request on its HTTP/2-only port and answers it with an HTTP error.
        try
        {
            using var response = await _http.SendAsync(http1);
            Assert.False(response.IsSuccessStatusCode, $"HTTP/1.1 got {(int)response.StatusCode}");
            Assert.False(response.Headers.Contains("grpc-status"));
        }
        catch (HttpRequestException)
        {
            // Or the connection is closed: refused either way.
        }

        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Request_body_reset_mid_message_ends_only_that_call()
    {
        var id = Guid.NewGuid().ToString();
        using var cts = new CancellationTokenSource();
        var content = new SlowContent(Frame(new EchoRequest { Message = id }.ToByteArray())[..4], cts);
        using var request = Request(content);
        await Assert.ThrowsAnyAsync<Exception>(() => _http.SendAsync(request, cts.Token));
        await AssertStillServingAsync();
    }

    private async Task AssertStillServingAsync()
    {
        var reply = await new Echo.EchoClient(fixture.Channel).UnaryAsync(new EchoRequest { Message = "still here" });
        Assert.Equal("still here", reply.Message);
    }

    private sealed record RawResult(HttpResponseMessage Response, StatusCode? Status, string? Message, byte[] Body);

    private async Task<RawResult> SendAsync(byte[] body, string contentType = "application/grpc", string? encoding = null, string? timeout = null)
    {
        using var request = Request(new ByteArrayContent(body), contentType);
        if (encoding is not null)
        {
            request.Headers.TryAddWithoutValidation("grpc-encoding", encoding);
        }

        if (timeout is not null)
        {
            request.Headers.TryAddWithoutValidation("grpc-timeout", timeout);
        }

        var response = await _http.SendAsync(request);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var status = Header(response, "grpc-status");
        return new RawResult(response, status is null ? null : (StatusCode)int.Parse(status), Header(response, "grpc-message"), bytes);
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.TrailingHeaders.TryGetValues(name, out var t) ? t.First()
        : response.Headers.TryGetValues(name, out var h) ? h.First() : null;

    private static HttpRequestMessage Request(HttpContent content, string contentType = "application/grpc")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, UnaryPath)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation("grpc-accept-encoding", "identity,gzip");
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return request;
    }

    private static byte[] Frame(byte[] message, bool compressed = false)
    {
        var frame = new byte[5 + message.Length];
        frame[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        return frame;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    /// <summary>Sends a few bytes, then cancels the request: the stream is reset mid-message.</summary>
    private sealed class SlowContent(byte[] prefix, CancellationTokenSource cancel) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(prefix);
            await stream.FlushAsync();
            await Task.Delay(200);
            await cancel.CancelAsync();
            await Task.Delay(Timeout.Infinite, cancel.Token);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
