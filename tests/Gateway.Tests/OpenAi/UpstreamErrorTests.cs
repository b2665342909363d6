using System.Net;
using System.Net.Sockets;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>gRPC failures from DialogueService become the HTTP status they mean.</summary>
[Collection(GatewayCollection.Name)]
public sealed class UpstreamErrorTests(GatewayFixture fixture)
{
    [Theory]
    [InlineData("fail:invalid", HttpStatusCode.BadRequest, "temperature")]
    [InlineData("fail:notfound", HttpStatusCode.NotFound, null)]
    [InlineData("fail:exhausted", HttpStatusCode.TooManyRequests, null)]
    [InlineData("fail:unavailable", HttpStatusCode.ServiceUnavailable, null)]
    public async Task A_gRPC_status_maps_to_its_HTTP_status(string script, HttpStatusCode status, string? param)
    {
        using var client = fixture.CreateClient();
        foreach (var stream in new[] { false, true })
        {
            var response = await client.PostJsonAsync("/v1/chat/completions",
                $$"""{"model":"test-model","messages":[{"role":"user","content":"{{script}}"}],"stream":{{(stream ? "true" : "false")}}}""");
            await response.AssertErrorAsync(status, param);
            if (status is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
            {
                Assert.NotNull(response.Headers.RetryAfter);
            }
        }
    }

    [Fact]
    public async Task An_unreachable_DialogueService_is_a_503()
    {
        var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var (gateway, address) = await GatewayFixture.StartGatewayAsync(new Uri($"http://127.0.0.1:{closedPort}"), anonymous: false, waitUntilReady: false);
        try
        {
            using var client = fixture.CreateClient(GatewayFixture.AliceKey, address);
            var error = await (await client.PostJsonAsync("/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"hi"}]}"""))
                .AssertErrorAsync(HttpStatusCode.ServiceUnavailable);
            Assert.Equal("upstream_unavailable", error.GetProperty("code").GetString());
            await (await client.GetAsync("/v1/models")).AssertErrorAsync(HttpStatusCode.ServiceUnavailable);

            // Not ready until DialogueService answers, so a load balancer sends no one.
            var ready = await client.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("waiting for DialogueService", await ready.Content.ReadAsStringAsync());
        }
        finally
        {
            await gateway.StopAsync();
            await gateway.DisposeAsync();
        }
    }
}
