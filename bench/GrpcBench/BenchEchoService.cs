using System.Net;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Bench;

/// <summary>The Echo RPCs the benchmark drives, served by grpc-dotnet (Grpc.AspNetCore) on Kestrel (HTTP/2
/// cleartext) with the services' message limits, in its own process like the peers' servers.</summary>
internal sealed class BenchEchoService : Echo.EchoBase
{
    public override Task<EchoReply> Unary(EchoRequest request, ServerCallContext context) =>
        Task.FromResult(new EchoReply { Message = request.Message, Payload = Payload(request.ResponseSize) });

    public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        var payload = Payload(request.ResponseSize);
        for (var i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(new EchoReply { Message = request.Message, Index = i, Payload = payload });
        }
    }

    private static ByteString Payload(int size) => size > 0 ? ByteString.CopyFrom(new byte[size]) : ByteString.Empty;

    public static async Task ServeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = 4 * 1024 * 1024;
            o.MaxSendMessageSize = 4 * 1024 * 1024;
            o.EnableDetailedErrors = false;
        });
        var app = builder.Build();
        app.MapGrpcService<BenchEchoService>();
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        Console.WriteLine(address.Port);
        await Console.In.ReadToEndAsync(); // the benchmark closes stdin to stop the server
        await app.StopAsync();
    }
}
