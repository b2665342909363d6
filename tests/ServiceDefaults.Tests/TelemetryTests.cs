using System.Diagnostics;
using ChatServices.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;

namespace ChatServices.ServiceDefaults.Tests;

public sealed class TelemetryTests
{
    [Fact]
    public async Task With_an_OTLP_endpoint_the_projects_activity_sources_are_recorded_once_the_host_has_started()
    {
        using var source = new ActivitySource(Telemetry.SourcePrefix + "Tests");
        // A port nothing listens on: the exporter only batches here, the test reads the spans' recording state.
        await using var app = await StartHostAsync(otlpEndpoint: "http://127.0.0.1:9");

        using var activity = source.StartActivity("probe");
        Assert.NotNull(activity);
        Assert.True(activity.Recorded);
        Assert.Equal(ActivityIdFormat.W3C, activity.IdFormat);
    }

    [Fact]
    public async Task Without_an_OTLP_endpoint_no_span_is_recorded()
    {
        using var source = new ActivitySource(Telemetry.SourcePrefix + "Tests.NoExport");
        await using var app = await StartHostAsync(otlpEndpoint: "");

        Assert.False(source.HasListeners());
        Assert.Null(source.StartActivity("probe"));
    }

    [Fact]
    public void Otlp_export_is_on_only_when_the_standard_endpoint_variable_is_set()
    {
        var without = new ConfigurationBuilder().Build();
        var with = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4317" })
            .Build();
        Assert.False(Telemetry.IsOtlpConfigured(without));
        Assert.True(Telemetry.IsOtlpConfigured(with));
    }

    /// <summary>A started host with the service defaults and the given OTLP endpoint ("" for none).</summary>
    private static async Task<WebApplication> StartHostAsync(string otlpEndpoint)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlpEndpoint;
        builder.AddServiceDefaults();
        var app = builder.Build();
        await app.StartAsync();
        return app;
    }
}
