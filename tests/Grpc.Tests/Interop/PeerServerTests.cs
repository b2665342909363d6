using ChatServices.Grpc.Tests.Client;
using ChatServices.Grpc.Tests.Infrastructure;
using Grpc.Net.Client;

namespace ChatServices.Grpc.Tests.Interop;

/// <summary>Starts a peer's server once (see Peers/*_server.*) for our client to call.</summary>
public abstract class PeerServerFixture : IEchoServerFixture, IAsyncLifetime
{
    private PeerServer? _server;

    public GrpcChannel Channel { get; private set; } = null!;

    public CallInvoker GzipCallInvoker { get; private set; } = null!;

    protected abstract System.Diagnostics.ProcessStartInfo ServerStartInfo(string descriptorSet);

    public async Task InitializeAsync()
    {
        _server = await PeerServer.StartAsync(ServerStartInfo(PeerProcess.WriteDescriptorSet()));
        Channel = GrpcChannel.ForAddress(_server.Address);
        GzipCallInvoker = Channel.WithGzipRequests();
    }

    public async Task DisposeAsync()
    {
        Channel?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>python grpcio; its replies are gzip-compressed.</summary>
public sealed class PythonServerFixture : PeerServerFixture
{
    protected override System.Diagnostics.ProcessStartInfo ServerStartInfo(string descriptorSet) =>
        PeerProcess.StartInfo(PeerProcess.Python, "python_server.py", descriptorSet);
}

public sealed class NodeServerFixture : PeerServerFixture
{
    protected override System.Diagnostics.ProcessStartInfo ServerStartInfo(string descriptorSet) =>
        PeerProcess.StartInfo("node", "node_server.js");
}

public sealed class PythonServerTests(PythonServerFixture fixture) : EchoContractTests(fixture), IClassFixture<PythonServerFixture>
{
    /// <summary>Only the python peer: grpc-js has no server-side API that resets a call.</summary>
    [Fact]
    public async Task Peer_abort_is_CANCELLED()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(fixture.Channel).UnaryAsync(new EchoRequest { Abort = true }));
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
    }
}

public sealed class NodeServerTests(NodeServerFixture fixture) : EchoContractTests(fixture), IClassFixture<NodeServerFixture>;
