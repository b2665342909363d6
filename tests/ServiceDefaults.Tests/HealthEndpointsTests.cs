using System.Net;
using ChatServices.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

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

    private static async Task<WebApplication> StartAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.AddServiceDefaults();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        await app.StartAsync();
        return app;
    }
}
