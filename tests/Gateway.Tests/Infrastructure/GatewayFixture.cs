using System.Net;
using System.Net.Http.Headers;
using ChatServices.Gateway.Auth;
using Grpc.Core;
using ChatServices.ServiceDefaults;
using ChatServices.ServiceDefaults.Identity;
using ChatServices.Tests.Shared;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ChatServices.Gateway.Tests.Infrastructure;

/// <summary>
/// The system under test, run for real: the scripted DialogueService on Kestrel (HTTP/2, 127.0.0.1, a port the OS
/// picks) and the Gateway on Kestrel (127.0.0.1, another such port) calling it over gRPC, built exactly as
/// Program.cs builds it but configured here. A second Gateway serves anonymous loopback callers.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    // Keys exist here in clear only because tests must present them; the gateway is configured with their hashes.
    public const string AliceKey = "sk-test-alice-0123456789";
    public const string BobKey = "sk-test-bob-0123456789";
    public const string LimitedKey = "sk-test-limited-requests";
    public const string TokensKey = "sk-test-limited-tokens";
    public const int LimitedRequestsPerMinute = 3;
    public const int TokensPerMinute = 300;
    public const int MaxBodyBytes = 64 * 1024;
    public const int MaxMessages = 16;

    private WebApplication? _upstream;
    private WebApplication? _gateway;
    private WebApplication? _anonymousGateway;

    public ScriptedDialogueService Upstream { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public Uri AnonymousBaseAddress { get; private set; } = null!;

    public Uri UpstreamAddress { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        (_upstream, UpstreamAddress) = await StartUpstreamAsync();
        Upstream = _upstream.Services.GetRequiredService<ScriptedDialogueService>();
        (_gateway, BaseAddress) = await StartGatewayAsync(UpstreamAddress, anonymous: false);
        (_anonymousGateway, AnonymousBaseAddress) = await StartGatewayAsync(UpstreamAddress, anonymous: true);
    }

    /// <summary>A client of the keyed gateway, presenting <paramref name="key"/> (none when null).</summary>
    public HttpClient CreateClient(string? key = AliceKey, Uri? baseAddress = null)
    {
        var client = new HttpClient { BaseAddress = baseAddress ?? BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public static async Task<(WebApplication App, Uri Address)> StartUpstreamAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        // Nothing from files: the Gateway's appsettings.json (copied beside this program) names its production port.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<ScriptedDialogueService>();
        var app = builder.Build();
        app.MapGrpcService<ScriptedDialogueService>();
        await app.StartAsync();
        return (app, Address(app));
    }

    /// <summary>Starts a Gateway against <paramref name="upstream"/>, with the test keys and limits.</summary>
    public static async Task<(WebApplication App, Uri Address)> StartGatewayAsync(
        Uri upstream, bool anonymous, Action<Dictionary<string, string?>>? configure = null, bool waitUntilReady = true, ILoggerProvider? logs = null)
    {
        var root = RepositoryRoot.Path;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ContentRootPath = Path.Combine(root, "src", "Gateway"),
            WebRootPath = Path.Combine(root, "src", "Gateway", "wwwroot"),
            EnvironmentName = "Testing",
        });
        // Only what the test sets: the checked-in appsettings.json names the production port.
        builder.Configuration.Sources.Clear();
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:DialogueEndpoint"] = upstream.ToString(),
            ["Gateway:AllowAnonymousOnLoopback"] = anonymous ? "true" : "false",
            ["Gateway:AnonymousOwnerId"] = "anonymous-local",
            ["Gateway:MaxRequestBodyBytes"] = MaxBodyBytes.ToString(),
            ["Gateway:MaxMessages"] = MaxMessages.ToString(),
            ["Gateway:DefaultLimits:RequestsPerMinute"] = "0",
            ["Gateway:DefaultLimits:TokensPerMinute"] = "0",
            ["Gateway:CorsOrigins:0"] = "https://app.example",
            ["Gateway:ApiKeys:0:Hash"] = ApiKeyFormat.Hash(AliceKey),
            ["Gateway:ApiKeys:0:OwnerId"] = "alice",
            ["Gateway:ApiKeys:1:Hash"] = ApiKeyFormat.Hash(BobKey),
            ["Gateway:ApiKeys:1:OwnerId"] = "bob",
            ["Gateway:ApiKeys:2:Hash"] = ApiKeyFormat.Hash(LimitedKey),
            ["Gateway:ApiKeys:2:OwnerId"] = "carol",
            ["Gateway:ApiKeys:2:RequestsPerMinute"] = LimitedRequestsPerMinute.ToString(),
            ["Gateway:ApiKeys:3:Hash"] = ApiKeyFormat.Hash(TokensKey),
            ["Gateway:ApiKeys:3:OwnerId"] = "dave",
            ["Gateway:ApiKeys:3:TokensPerMinute"] = TokensPerMinute.ToString(),
        };
        configure?.Invoke(settings);
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Debug);
            builder.Logging.AddProvider(logs);
        }
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.AddServiceDefaults();
        builder.AddGateway();
        var app = builder.Build();
        app.MapGateway();
        await app.StartAsync();
        var address = Address(app);
        if (waitUntilReady)
        {
            using var client = new HttpClient { BaseAddress = address };
            await Wait.UntilAsync(async () => (await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the gateway's /readyz answering 200");
        }
        return (app, address);
    }

    // Exactly one address, the one asked for: a second would mean a configured port leaked in (never bind 8080).
    private static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

    public async Task DisposeAsync()
    {
        foreach (var app in new[] { _anonymousGateway, _gateway, _upstream })
        {
            if (app is null) continue;
            await app.StopAsync(TimeSpan.FromSeconds(2));
            await app.DisposeAsync();
        }
    }
}

/// <summary>Every test class that talks to the running system shares one.</summary>
[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}
