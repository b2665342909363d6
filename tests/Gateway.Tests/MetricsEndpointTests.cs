using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests;

/// <summary>The Gateway serves Prometheus text at <c>/metrics</c> on its main port, over HTTP/1.1, without a key.</summary>
[Collection(GatewayCollection.Name)]
public sealed class MetricsEndpointTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Metrics_need_no_key_and_count_the_requests_by_route()
    {
        using (var caller = fixture.CreateClient())
        {
            var chat = await caller.PostJsonAsync("/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"count me"}]}""");
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        using var scraper = fixture.CreateClient(key: null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await scraper.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Matches(@"(?m)^http_server_request_duration_seconds_count\{[^}]*http_route=""/v1/chat/completions""[^}]*\} [1-9]", text);
    }
}
