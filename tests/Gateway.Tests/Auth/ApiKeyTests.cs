using System.Net;
using System.Net.Http.Headers;
using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.ServiceDefaults.Identity;

namespace ChatServices.Gateway.Tests.Auth;

[Collection(GatewayCollection.Name)]
public sealed class ApiKeyTests(GatewayFixture fixture)
{
    private const string Chat = """{"model":"test-model","messages":[{"role":"user","content":"who am i"}]}""";

    [Fact]
    public async Task A_request_without_a_key_is_a_401()
    {
        using var client = fixture.CreateClient(key: null);
        var error = await (await client.PostJsonAsync("/v1/chat/completions", Chat)).AssertErrorAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("missing_api_key", error.GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/conversations")).StatusCode);
    }

    [Fact]
    public async Task A_request_with_an_unknown_key_is_a_401()
    {
        using var client = fixture.CreateClient(key: "sk-not-a-key");
        var error = await (await client.PostJsonAsync("/v1/chat/completions", Chat)).AssertErrorAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());

        // The stored hash itself is not a key.
        using var hashClient = fixture.CreateClient(key: ApiKeyFormat.Hash(GatewayFixture.AliceKey));
        await (await hashClient.GetAsync("/v1/models")).AssertErrorAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_non_bearer_authorization_is_a_401()
    {
        using var client = fixture.CreateClient(key: null);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", GatewayFixture.AliceKey);
        await (await client.GetAsync("/v1/models")).AssertErrorAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_valid_key_acts_as_its_owner_upstream()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var response = await client.PostJsonAsync("/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"owner check alice"}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("alice", fixture.Upstream.ChatRequests.Last(r => r.Messages.Count > 0 && r.Messages[^1].Content == "owner check alice").OwnerId);
    }

    [Fact]
    public async Task Keys_are_stored_as_SHA256_hashes()
    {
        Assert.Equal("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ApiKeyFormat.Hash("test"));
        var store = new ApiKeyStore(Microsoft.Extensions.Options.Options.Create(new GatewayOptions
        {
            ApiKeys = [new ApiKeyOptions { Hash = ApiKeyFormat.Hash("sk-one"), OwnerId = "one", RequestsPerMinute = 7 }],
        }));
        Assert.Equal("one", store.Find("sk-one")?.OwnerId);
        Assert.Equal(7, store.Find("sk-one")?.RequestsPerMinute);
        Assert.Null(store.Find("sk-one "));
        Assert.Null(store.Find(ApiKeyFormat.Hash("sk-one")));
    }

    [Fact]
    public void A_malformed_hash_in_configuration_is_refused_at_start()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new GatewayOptions { ApiKeys = [new ApiKeyOptions { Hash = "sk-plain-key", OwnerId = "x" }] });
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => new ApiKeyStore(options));
        Assert.Contains("SHA-256", e.Message);
    }

    [Fact]
    public async Task Loopback_callers_without_a_key_are_served_anonymously_when_allowed()
    {
        using var client = fixture.CreateClient(key: null, baseAddress: fixture.AnonymousBaseAddress);
        var response = await client.PostJsonAsync("/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"owner check anonymous"}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("anonymous-local", fixture.Upstream.ChatRequests.Last(r => r.Messages.Count > 0 && r.Messages[^1].Content == "owner check anonymous").OwnerId);

        // A configured key still acts as its own owner there.
        using var keyed = fixture.CreateClient(GatewayFixture.BobKey, fixture.AnonymousBaseAddress);
        Assert.Equal(HttpStatusCode.OK, (await keyed.PostJsonAsync("/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"owner check keyed"}]}""")).StatusCode);
        Assert.Equal("bob", fixture.Upstream.ChatRequests.Last(r => r.Messages.Count > 0 && r.Messages[^1].Content == "owner check keyed").OwnerId);
    }

    [Fact]
    public async Task Anonymous_loopback_access_needs_a_loopback_Host_name()
    {
        // What a page on a rebinding domain that resolves to 127.0.0.1 would send.
        using var client = fixture.CreateClient(key: null, baseAddress: fixture.AnonymousBaseAddress);
        var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Host = "rebind.example:" + fixture.AnonymousBaseAddress.Port;
        await (await client.SendAsync(request)).AssertErrorAsync(HttpStatusCode.Unauthorized);

        var local = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        local.Headers.Host = "localhost:" + fixture.AnonymousBaseAddress.Port;
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(local)).StatusCode);
    }

    [Fact]
    public async Task The_web_page_and_health_endpoints_need_no_key()
    {
        using var client = fixture.CreateClient(key: null);
        var page = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<title>ChatServices</title>", await page.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/app.js")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task CORS_answers_a_preflight_from_a_configured_origin_only()
    {
        using var client = fixture.CreateClient(key: null);
        async Task<HttpResponseMessage> Preflight(string origin)
        {
            var request = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions");
            request.Headers.Add("Origin", origin);
            request.Headers.Add("Access-Control-Request-Method", "POST");
            request.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
            return await client.SendAsync(request);
        }
        var allowed = await Preflight("https://app.example");
        Assert.True(allowed.IsSuccessStatusCode);
        Assert.Equal("https://app.example", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var other = await Preflight("https://evil.example");
        Assert.False(other.Headers.Contains("Access-Control-Allow-Origin"));
    }
}
