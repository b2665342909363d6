using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.Limits;

[Collection(GatewayCollection.Name)]
public sealed class RateLimitTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Requests_over_the_keys_per_minute_limit_are_a_429_with_Retry_After()
    {
        using var client = fixture.CreateClient(GatewayFixture.LimitedKey);
        for (var i = 0; i < GatewayFixture.LimitedRequestsPerMinute; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/models")).StatusCode);
        }

        var refused = await client.GetAsync("/v1/models");
        var error = await refused.AssertErrorAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("requests", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value.TotalSeconds, 1, 60);

        // Other keys have their own allowance.
        using var other = fixture.CreateClient(GatewayFixture.AliceKey);
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/v1/models")).StatusCode);
    }

    [Fact]
    public async Task Tokens_are_charged_up_front_and_unused_ones_refunded()
    {
        using var client = fixture.CreateClient(GatewayFixture.TokensKey);
        // Up to 250 tokens each (prompt estimate + max_tokens), 300 a minute: the scripted reply uses far fewer,
        // so the refund lets the next request through.
        const string Body = """{"model":"test-model","messages":[{"role":"user","content":"tokens"}],"max_tokens":240}""";
        for (var i = 0; i < 3; i++)
        {
            var response = await client.PostJsonAsync("/v1/chat/completions", Body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Two that may each cost 250 cannot both be in flight: the second is refused while the first runs.
        var slow = client.PostStreamingAsync("/v1/chat/completions",
            """{"model":"test-model","messages":[{"role":"user","content":"slow tokens"}],"max_tokens":240,"stream":true}""");
        using var first = await slow;
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var refused = await client.PostJsonAsync("/v1/chat/completions", Body);
        var error = await refused.AssertErrorAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("tokens", error.GetProperty("type").GetString());
        Assert.NotNull(refused.Headers.RetryAfter?.Delta);
    }
}
