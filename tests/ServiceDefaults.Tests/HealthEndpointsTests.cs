using System.Net;
using ChatServices.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServices.ServiceDefaults.Tests;

public sealed class HealthEndpointsTests
{
    [Fact]
    public async Task Liveness_answers_while_readiness_waits_for_MarkReady()
    {
        await using var app = await StartAsync();
        var client = app.GetTestClient();
        var readiness = app.Services.GetRequiredService<Readiness>();

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        var notReady = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Contains("starting", await notReady.Content.ReadAsStringAsync());

        readiness.MarkReady();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);

        readiness.MarkNotReady("draining");
        var draining = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, draining.StatusCode);
        Assert.Contains("draining", await draining.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task On_stopping_readiness_turns_false_and_the_host_waits_the_configured_drain_time()
    {
        await using var app = await StartAsync(new() { ["Shutdown:DrainTimeout"] = "00:00:42", ["Shutdown:StopMargin"] = "00:00:03" });
        var readiness = app.Services.GetRequiredService<Readiness>();
        readiness.MarkReady();

        Assert.Equal(TimeSpan.FromSeconds(45), app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout);
        app.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication(); // what SIGTERM does
        Assert.False(readiness.IsReady);
        Assert.StartsWith("draining", readiness.NotReadyReason);
    }

    private static async Task<WebApplication> StartAsync(Dictionary<string, string?>? settings = null)
    {
        var builder = WebApplication.CreateBuilder();
        if (settings is not null) builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseTestServer();
        builder.AddServiceDefaults();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        await app.StartAsync();
        return app;
    }
}
