using System.Buffers.Binary;
using System.Net;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;

namespace ChatServices.Grpc.Tests.BadInput;

/// <summary>Runs alone (no other test class in parallel), so the managed heap it measures is the server's and
/// its own.</summary>
[CollectionDefinition(nameof(MemoryBoundTests), DisableParallelization = true)]
public sealed class MemoryBoundCollection;

[Collection(nameof(MemoryBoundTests))]
public sealed class MemoryBoundTests(TestServerFixture fixture) : IClassFixture<TestServerFixture>, IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = fixture.Server.Address };

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Repeated_bad_input_does_not_grow_server_memory()
    {
        var oversize = new byte[5 + 64 * 1024];
        BinaryPrimitives.WriteUInt32BigEndian(oversize.AsSpan(1), 64 * 1024 * 1024);
        var truncated = Frame(new byte[200_000])[..100_000];
        var garbage = Frame(Enumerable.Repeat((byte)0xFF, 50_000).ToArray());
        async Task RoundAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                await Task.WhenAll(SendAsync(_http, oversize), SendAsync(_http, truncated), SendAsync(_http, garbage));
            }
        }

        await RoundAsync(30);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        await RoundAsync(200);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 16 * 1024 * 1024, $"managed memory grew by {(after - before) / 1024} KiB over 600 bad requests");
        var reply = await new Echo.EchoClient(fixture.Channel).UnaryAsync(new EchoRequest { Message = "still here" });
        Assert.Equal("still here", reply.Message);
    }

    private static async Task SendAsync(HttpClient http, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/chatservices.testing.v1.Echo/Unary")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var status = response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First()
            : response.Headers.GetValues("grpc-status").First();
        Assert.NotEqual("0", status);
    }

    private static byte[] Frame(byte[] message)
    {
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        return frame;
    }
}
