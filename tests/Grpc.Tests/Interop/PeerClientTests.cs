using System.Text.Json;
using ChatServices.Grpc.Tests.Infrastructure;

namespace ChatServices.Grpc.Tests.Interop;

/// <summary>Runs a peer's client once against our server (see Peers/*_client.*) and keeps what it observed.</summary>
public abstract class PeerClientFixture : IAsyncLifetime
{
    private TestServer? _server;

    public IReadOnlyDictionary<string, JsonElement> Results { get; private set; } = null!;

    protected abstract System.Diagnostics.ProcessStartInfo ClientStartInfo(string target, string descriptorSet);

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        var target = $"127.0.0.1:{_server.Address.Port}";
        Results = await PeerProcess.RunClientAsync(ClientStartInfo(target, PeerProcess.WriteDescriptorSet()), TimeSpan.FromSeconds(120));
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

public sealed class PythonClientFixture : PeerClientFixture
{
    protected override System.Diagnostics.ProcessStartInfo ClientStartInfo(string target, string descriptorSet) =>
        PeerProcess.StartInfo(PeerProcess.Python, "python_client.py", target, descriptorSet);
}

public sealed class NodeClientFixture : PeerClientFixture
{
    protected override System.Diagnostics.ProcessStartInfo ClientStartInfo(string target, string descriptorSet) =>
        PeerProcess.StartInfo("node", "node_client.js", target);
}

/// <summary>A peer's client (gRPC C-core or grpc-js) against our server: every behaviour the peer observed.</summary>
public abstract class PeerClientTests(PeerClientFixture fixture)
{
    private JsonElement Result(string scenario)
    {
        Assert.True(fixture.Results.TryGetValue(scenario, out var entry), $"scenario {scenario} did not report");
        Assert.False(entry.TryGetProperty("error", out var error), $"scenario {scenario} failed in the peer: {error}");
        return entry.GetProperty("result");
    }

    private static string S(JsonElement e, string name) => e.GetProperty(name).ToString();

    [Fact]
    public void Unary_call_succeeds()
    {
        var r = Result("unary");
        Assert.Equal("hello", S(r, "message"));
        Assert.Equal("OK", S(r, "code"));
    }

    [Fact]
    public void Server_streaming_delivers_every_message_in_order() =>
        Assert.Equal(Enumerable.Range(0, 50), Result("server_stream").GetProperty("indexes").EnumerateArray().Select(e => e.GetInt32()));

    [Fact]
    public void Client_streaming_is_answered_once_after_all_requests()
    {
        var r = Result("client_stream");
        Assert.Equal("a,b,c", S(r, "message"));
        Assert.Equal(3, r.GetProperty("index").GetInt32());
    }

    [Fact]
    public void Duplex_replies_arrive_before_the_request_stream_ends()
    {
        var r = Result("duplex");
        Assert.Equal(["m0", "m1", "m2", "m3", "m4"], r.GetProperty("messages").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(0, r.GetProperty("after_close").GetInt32());
    }

    [Fact]
    public void Error_status_carries_its_message_and_trailing_metadata()
    {
        var r = Result("error_with_trailers");
        Assert.Equal("NOT_FOUND", S(r, "code"));
        Assert.Equal("nöt found: 100% gone", S(r, "details"));
        Assert.Equal("trailer-value", S(r.GetProperty("trailers"), "x-trailer"));
        Assert.Equal("000102faff", S(r.GetProperty("trailers"), "x-trailer-bin"));
    }

    [Fact]
    public void Error_after_streamed_messages_arrives_after_them()
    {
        var r = Result("stream_error_after_messages");
        Assert.Equal("ABORTED", S(r, "code"));
        Assert.Equal("late", S(r, "details"));
        Assert.Equal(3, r.GetProperty("received").GetInt32());
        Assert.Equal("trailer-value", S(r.GetProperty("trailers"), "x-trailer"));
    }

    /// <summary>UNKNOWN is the gRPC status-code table's code for "server side application throws an exception";
    /// grpc-dotnet answers it (the layer it replaced answered INTERNAL). EnableDetailedErrors=false keeps the text out.</summary>
    [Fact]
    public void Handler_exception_is_UNKNOWN_and_does_not_leak()
    {
        var r = Result("handler_exception");
        Assert.Equal("UNKNOWN", S(r, "code"));
        Assert.DoesNotContain("secret", S(r, "details"));
    }

    [Fact]
    public void Metadata_and_binary_metadata_round_trip()
    {
        var r = Result("metadata");
        Assert.Equal("value-1", S(r.GetProperty("initial"), "x-echo"));
        Assert.Equal("01020300ff", S(r.GetProperty("initial"), "x-echo-bin"));
        Assert.Equal("value-1", S(r.GetProperty("trailing"), "x-echo-trailer"));
        Assert.Equal("01020300ff", S(r.GetProperty("trailing"), "x-echo-trailer-bin"));
    }

    [Fact]
    public void Client_deadline_reaches_the_server() =>
        Assert.InRange(Result("deadline_sent").GetProperty("remaining_ms").GetInt64(), 25_000, 31_000);

    [Fact]
    public void Deadline_exceeded_ends_the_call_and_cancels_the_handler()
    {
        var r = Result("deadline_exceeded");
        Assert.Equal("DEADLINE_EXCEEDED", S(r, "code"));
        Assert.Equal("yes", S(r, "handler_cancelled"));
    }

    [Fact]
    public void Client_cancellation_fires_the_handler_token()
    {
        var r = Result("cancellation");
        Assert.Equal(0, r.GetProperty("first").GetInt32());
        Assert.Equal("CANCELLED", S(r, "code"));
        Assert.Equal("yes", S(r, "handler_cancelled"));
    }

    [Fact]
    public void Server_abort_is_CANCELLED_for_the_client() => Assert.Equal("CANCELLED", S(Result("server_abort"), "code"));

    [Fact]
    public void Unknown_method_and_service_are_UNIMPLEMENTED()
    {
        var r = Result("unimplemented");
        Assert.Equal("UNIMPLEMENTED", S(r, "method"));
        Assert.Equal("UNIMPLEMENTED", S(r, "service"));
    }

    [Fact]
    public void Gzip_compressed_requests_are_accepted()
    {
        var r = Result("gzip");
        Assert.Equal(100_000, r.GetProperty("payload_size").GetInt32());
        Assert.Equal(100_000, r.GetProperty("reply_payload").GetInt32());
        Assert.Equal("gzip", S(r, "request_encoding"));
    }

    [Fact]
    public void Messages_near_the_limit_pass_and_over_it_are_RESOURCE_EXHAUSTED()
    {
        var r = Result("size_limit");
        Assert.Equal(4 * 1024 * 1024 - 100, r.GetProperty("near_request").GetInt32());
        Assert.Equal(4 * 1024 * 1024 - 100, r.GetProperty("near_reply").GetInt32());
        Assert.Equal("RESOURCE_EXHAUSTED", S(r, "over"));
    }

    [Fact]
    public void Health_Check_and_Watch_follow_run_time_changes()
    {
        var r = Result("health");
        Assert.Equal("SERVING", S(r, "overall"));
        Assert.Equal("SERVING", S(r, "echo"));
        Assert.Equal("NOT_FOUND", S(r, "unknown"));
        Assert.Equal(["SERVICE_UNKNOWN", "SERVING", "NOT_SERVING"], r.GetProperty("watch").EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [InlineData("reflection_v1alpha")]
    [InlineData("reflection_v1")]
    public void Reflection_lists_services_and_describes_methods(string scenario)
    {
        var r = Result(scenario);
        var services = r.GetProperty("services").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("chatservices.testing.v1.Echo", services);
        Assert.Contains("grpc.health.v1.Health", services);
        Assert.Equal(["Unary", "ServerStream", "ClientStream", "Duplex"], r.GetProperty("methods").EnumerateArray().Select(e => e.GetString()));
    }
}

public sealed class PythonClientTests(PythonClientFixture fixture) : PeerClientTests(fixture), IClassFixture<PythonClientFixture>;

public sealed class NodeClientTests(NodeClientFixture fixture) : PeerClientTests(fixture), IClassFixture<NodeClientFixture>;
