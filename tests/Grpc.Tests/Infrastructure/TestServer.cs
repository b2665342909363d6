using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ChatServices.Grpc.Tests.Interop;
using ChatServices.ServiceDefaults;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Tests.Infrastructure;

/// <summary>
/// A real Kestrel server on 127.0.0.1 (port chosen by the OS), HTTP/2 only, serving Echo, health and reflection
/// on grpc-dotnet with the services' configuration (AddGrpcServiceDefaults / MapGrpcServiceDefaults from ServiceDefaults, readiness
/// health); optionally TLS with a certificate made for the run. It is ready once started.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestServer(WebApplication app, Uri address, X509Certificate2? certificate)
    {
        _app = app;
        Address = address;
        Certificate = certificate;
    }

    public Uri Address { get; }

    public X509Certificate2? Certificate { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<TestServer> StartAsync(bool tls = false, string? responseCompression = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.AddServiceDefaults();
        builder.Logging.ClearProviders();
        var certificate = tls ? CreateCertificate() : null;
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        builder.Configuration["Grpc:ResponseCompressionAlgorithm"] = responseCompression;
        builder.AddGrpcServiceDefaults();
        builder.Services.AddSingleton<CallLog>();
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        app.MapGrpcServiceDefaults();
        app.Services.GetRequiredService<Readiness>().MarkReady();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServer(app, new Uri(address), certificate);
    }

    public GrpcChannel CreateChannel(GrpcChannelOptions? options = null)
    {
        options ??= new GrpcChannelOptions();
        if (Certificate is not null)
        {
            var thumbprint = Certificate.Thumbprint;
            options.HttpHandler = new SocketsHttpHandler
            {
                SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && new X509Certificate2(cert).Thumbprint == thumbprint },
            };
        }

        return GrpcChannel.ForAddress(Address, options);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }
}

/// <summary>One server for all tests of a class.</summary>
public sealed class TestServerFixture : Client.IEchoServerFixture, IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public GrpcChannel Channel { get; private set; } = null!;

    public CallInvoker GzipCallInvoker { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync();
        Channel = Server.CreateChannel();
        GzipCallInvoker = Channel.WithGzipRequests();
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}

public static class GzipRequests
{
    /// <summary>Calls that gzip-compress their request messages. Grpc.Net.Client is told so per call, by the
    /// header grpc-internal-encoding-request (it is not sent); this sets it on every call.</summary>
    public static CallInvoker WithGzipRequests(this GrpcChannel channel) =>
        channel.Intercept(headers =>
        {
            headers.Add("grpc-internal-encoding-request", "gzip");
            return headers;
        });
}
