using System.Diagnostics.Metrics;
using System.Net;
using ChatServices.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.ServiceDefaults.Tests;

/// <summary>
/// <c>/metrics</c> on a real Kestrel host, asked over HTTP/1.1 as Prometheus and the kubelet ask: on the main port
/// of an HTTP/1.1 service (the Gateway), and on the management endpoint of a service whose main port is
/// HTTP/2-only (DialogueService, InferenceService).
/// </summary>
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Without_a_management_endpoint_metrics_are_Prometheus_text_on_the_main_port()
    {
        using var meter = new Meter(Telemetry.SourcePrefix + "Tests.MainPort");
        await using var app = await StartAsync(new()
        {
            ["Kestrel:Endpoints:Http:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Http:Protocols"] = "Http1",
        });
        meter.CreateCounter<long>("chatservices.tests.probes", "{probe}").Add(3); // once the host listens to its meters
        Assert.False(app.Services.GetRequiredService<ManagementEndpoint>().IsConfigured);
        var main = Addresses(app).Single();

        using var response = await GetAsync(main, "/metrics", HttpVersion.Version11);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE chatservices_tests_probes_total counter", text);
        Assert.Matches(@"(?m)^chatservices_tests_probes_total\{[^}]*otel_scope_name=""ChatServices\.Tests\.MainPort""[^}]*\} 3( |$)", text);
    }

    [Fact]
    public async Task With_a_management_endpoint_metrics_answer_only_there_and_health_on_both()
    {
        using var meter = new Meter(Telemetry.SourcePrefix + "Tests.Management");
        await using var app = await StartAsync(new()
        {
            ["Kestrel:Endpoints:Grpc:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Grpc:Protocols"] = "Http2",
            ["Kestrel:Endpoints:Management:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Management:Protocols"] = "Http1",
        });
        meter.CreateCounter<long>("chatservices.tests.management_probes", "{probe}").Add(1);
        var endpoint = app.Services.GetRequiredService<ManagementEndpoint>();
        Assert.True(endpoint.IsConfigured);
        var management = endpoint.Address ?? throw new InvalidOperationException("the management endpoint did not bind");
        var main = Assert.Single(Addresses(app), a => a.Port != management.Port);

        using var metrics = await GetAsync(management, "/metrics", HttpVersion.Version11);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Contains("chatservices_tests_management_probes_total", await metrics.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(management, "/healthz", HttpVersion.Version11)).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(management, "/readyz", HttpVersion.Version11)).StatusCode);
        app.Services.GetRequiredService<Readiness>().MarkReady();
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(management, "/readyz", HttpVersion.Version11)).StatusCode);

        // The main endpoint speaks HTTP/2 only: health answers there, metrics do not.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(main, "/readyz", HttpVersion.Version20)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(main, "/metrics", HttpVersion.Version20)).StatusCode);
    }

    [Fact]
    public async Task Metrics_restricted_to_configured_networks_refuse_other_callers_and_health_stays_open()
    {
        await using var app = await StartAsync(new()
        {
            ["Kestrel:Endpoints:Http:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Http:Protocols"] = "Http1",
            ["Telemetry:MetricsAllowedNetworks:0"] = "10.0.0.0/8",
        });
        var main = Addresses(app).Single();

        using var refused = await GetAsync(main, "/metrics", HttpVersion.Version11);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("MetricsAllowedNetworks", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(main, "/healthz", HttpVersion.Version11)).StatusCode);
    }

    [Fact]
    public async Task Metrics_from_an_allowed_network_answer()
    {
        await using var app = await StartAsync(new()
        {
            ["Kestrel:Endpoints:Http:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Http:Protocols"] = "Http1",
            ["Telemetry:MetricsAllowedNetworks:0"] = "10.0.0.0/8",
            ["Telemetry:MetricsAllowedNetworks:1"] = "127.0.0.0/8",
        });

        using var response = await GetAsync(Addresses(app).Single(), "/metrics", HttpVersion.Version11);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void A_metrics_network_that_is_not_CIDR_is_refused_at_start()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Telemetry:MetricsAllowedNetworks:0"] = "10.0.0.0/33",
        }).Build();

        var error = Assert.Throws<InvalidOperationException>(() => ServiceDefaultsExtensions.MetricsAllowedNetworks(configuration));
        Assert.Contains("'10.0.0.0/33'", error.Message);
    }

    private static async Task<WebApplication> StartAsync(Dictionary<string, string?> configuration)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(configuration);
        builder.AddServiceDefaults();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        await app.StartAsync();
        return app;
    }

    private static Uri[] Addresses(WebApplication app) =>
        [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a))];

    private static async Task<HttpResponseMessage> GetAsync(Uri address, string path, Version version)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(address, path))
        {
            Version = version,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var response = await client.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }
}
