using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Reflection;
using System.Text.Json;
using ChatServices.DialogueService.Tests;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Grpc.Core;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Keys in the database, made and revoked with tools/Keys, used through two Gateway replicas that validate them
/// through DialogueService (no anonymous loopback access on these Gateways): tenants stay apart over HTTP, a
/// revocation reaches both replicas within the documented cache time, and no key appears in any log.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class KeysAcrossGatewaysTests(ChatSystemFixture fixture) : IAsyncLifetime
{
    private const int KeyCacheSeconds = 2;
    private readonly List<ServiceProcess> _gateways = [];
    private readonly List<string> _secrets = [];
    private ChatSystem System => fixture.System;

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 2; i++)
        {
            var gateway = await ServiceProcess.StartAsync("Gateway", new Dictionary<string, string>
            {
                ["Kestrel__Endpoints__Http__Url"] = ServiceProcess.AnyPort,
                ["Gateway__DialogueEndpoint"] = System.Dialogue.Address.ToString(),
                ["Gateway__DialogueApiKey"] = TestCredentials.BackendServiceKey,
                ["Gateway__KeyCacheSeconds"] = KeyCacheSeconds.ToString(),
            }, http2: false);
            _gateways.Add(gateway);
            await gateway.WaitUntilReadyAsync(http2: false, TimeSpan.FromSeconds(60));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var gateway in _gateways) await gateway.DisposeAsync();
    }

    [Fact]
    public async Task Another_tenant_can_neither_list_read_continue_regenerate_rename_nor_delete_over_HTTP()
    {
        var (_, aliceKey) = await CreateKeyAsync("http-alice");
        var (_, bobKey) = await CreateKeyAsync("http-bob");
        using var alice = Client(_gateways[0], aliceKey);
        using var bob = Client(_gateways[1], bobKey);

        var created = await alice.PostAsJsonAsync("/api/conversations", new { title = "alice's plans" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

        var listed = await bob.GetFromJsonAsync<JsonElement>("/api/conversations");
        Assert.DoesNotContain(id, listed.GetRawText());
        Assert.Equal(HttpStatusCode.NotFound, (await bob.GetAsync($"/api/conversations/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bob.PostAsJsonAsync($"/api/conversations/{id}/messages", new { content = "hi" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bob.PostAsJsonAsync($"/api/conversations/{id}/messages", new { regenerate = true })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bob.PatchAsJsonAsync($"/api/conversations/{id}", new { title = "mine" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bob.DeleteAsync($"/api/conversations/{id}")).StatusCode);

        var kept = await alice.GetFromJsonAsync<JsonElement>($"/api/conversations/{id}");
        Assert.Equal("alice's plans", kept.GetProperty("title").GetString());

        using var anonymous = Client(_gateways[0], null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/conversations")).StatusCode);
        using var guessing = Client(_gateways[0], ServiceDefaults.Identity.ApiKeyFormat.Generate());
        Assert.Equal(HttpStatusCode.Unauthorized, (await guessing.GetAsync("/api/conversations")).StatusCode);
    }

    [Fact]
    public async Task A_revoked_key_stops_working_on_every_Gateway_within_the_cache_time_and_at_once_on_DialogueService()
    {
        var (keyId, key) = await CreateKeyAsync("revoked-tenant");
        using var onA = Client(_gateways[0], key);
        using var onB = Client(_gateways[1], key);
        Assert.Equal(HttpStatusCode.OK, (await onA.GetAsync("/api/conversations")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/conversations")).StatusCode); // now cached on both

        var keys = await RunKeysAsync("revoke", keyId);
        Assert.True(keys.ExitCode == 0, keys.Output);
        var revokedAt = Stopwatch.StartNew();

        var direct = await Assert.ThrowsAsync<RpcException>(() => System.DialogueClientWith(key).ListConversationsAsync(new ListConversationsRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, direct.StatusCode);
        var refusedAfter = new List<TimeSpan>();
        foreach (var client in new[] { onA, onB })
        {
            while ((await client.GetAsync("/api/conversations")).StatusCode != HttpStatusCode.Unauthorized)
            {
                Assert.True(revokedAt.Elapsed < TimeSpan.FromSeconds(KeyCacheSeconds + 5), "the revoked key still works");
                await Task.Delay(100);
            }
            refusedAfter.Add(revokedAt.Elapsed);
        }
        // The bound: the Gateway's key cache time (plus scheduling slack on a loaded machine).
        Assert.All(refusedAfter, t => Assert.True(t <= TimeSpan.FromSeconds(KeyCacheSeconds + 1), $"refused after {t}"));
    }

    [Fact]
    public async Task Key_management_needs_an_admin_and_no_key_appears_in_any_log()
    {
        var (_, userKey) = await CreateKeyAsync("no-admin");
        var denied = await RunKeysAsync(["create", "--owner", "someone"], userKey);
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("PermissionDenied", denied.Output);

        using var client = Client(_gateways[0], userKey);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/conversations")).StatusCode);
        var logs = System.Logs + string.Concat(_gateways.Select(g => g.Output));
        Assert.NotEmpty(_secrets);
        foreach (var secret in _secrets.Append(TestCredentials.BackendServiceKey).Append(TestCredentials.AdminKey))
            Assert.DoesNotContain(secret[ServiceDefaults.Identity.ApiKeyFormat.Prefix.Length..], logs);
    }

    [Fact]
    public async Task A_keys_request_limit_holds_across_both_Gateways_and_its_usage_is_readable_over_gRPC_and_HTTP()
    {
        var (keyId, key) = await CreateKeyAsync("limited-tenant", "--requests-per-minute", "2");
        using var onA = Client(_gateways[0], key);
        using var onB = Client(_gateways[1], key);
        await AwayFromMinuteBoundaryAsync();

        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(onA)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(onB)).StatusCode);
        // B has seen one request of this key: its own limiter would admit another. The shared count does not.
        var third = await ChatAsync(onB);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.True(third.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal("rate_limit_exceeded", (await third.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());

        var admin = new Admin.AdminClient(System.DialogueChannel.WithCredential(TestCredentials.AdminKey));
        var usage = Assert.Single((await admin.GetUsageAsync(new GetUsageRequest { KeyId = "key:" + keyId })).Usage);
        Assert.Equal(("limited-tenant", 2L), (usage.OwnerId, usage.Requests));
        Assert.True(usage.PromptTokens > 0 && usage.CompletionTokens > 0, usage.ToString());

        var (_, adminKey) = await CreateKeyAsync("auditor", "--role", "admin");
        using var auditor = Client(_gateways[1], adminKey);
        var overHttp = await auditor.GetFromJsonAsync<JsonElement>($"/admin/usage?key_id=key:{keyId}");
        var row = Assert.Single(overHttp.GetProperty("data").EnumerateArray());
        Assert.Equal((usage.Requests, usage.PromptTokens, usage.CompletionTokens),
            (row.GetProperty("requests").GetInt64(), row.GetProperty("prompt_tokens").GetInt64(), row.GetProperty("completion_tokens").GetInt64()));
        Assert.Equal(HttpStatusCode.Forbidden, (await onA.GetAsync($"/admin/usage?key_id=key:{keyId}")).StatusCode);
    }

    [Fact]
    public async Task A_keys_token_limit_holds_for_a_tenant_calling_DialogueService_directly()
    {
        var (_, key) = await CreateKeyAsync("token-tenant", "--tokens-per-minute", "1");
        var tenant = System.DialogueClientWith(key);
        await AwayFromMinuteBoundaryAsync();
        var chat = new ChatRequest { Messages = { new ChatMessage { Role = "user", Content = "hi" } }, Settings = new GenerationSettings { MaxTokens = 2 } };

        await tenant.ChatToEndAsync(chat);
        var refused = await Assert.ThrowsAsync<RpcException>(() => tenant.ChatToEndAsync(chat));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("tokens per minute", refused.Status.Detail);
    }

    private static Task<HttpResponseMessage> ChatAsync(HttpClient client) => client.PostAsJsonAsync("/v1/chat/completions",
        new { model = "model", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 });

    /// <summary>Limits count per UTC minute: a test that makes a few requests starts well inside one.</summary>
    private static async Task AwayFromMinuteBoundaryAsync()
    {
        var second = DateTime.UtcNow.Second;
        if (second > 45) await Task.Delay(TimeSpan.FromSeconds(61 - second));
    }

    private async Task<(string Id, string Key)> CreateKeyAsync(string owner, params string[] options)
    {
        var result = await RunKeysAsync(["create", "--owner", owner, "--name", "e2e", .. options], TestCredentials.AdminKey);
        Assert.True(result.ExitCode == 0, result.Output);
        string Field(string name) => result.Output.Split('\n').Single(l => l.StartsWith(name + ":")).Split(':', 2)[1].Trim();
        var key = Field("key");
        _secrets.Add(key);
        return (Field("id"), key);
    }

    private Task<(int ExitCode, string Output)> RunKeysAsync(params string[] args) => RunKeysAsync(args, TestCredentials.AdminKey);

    private async Task<(int ExitCode, string Output)> RunKeysAsync(string[] args, string credential)
    {
        var configuration = typeof(KeysAcrossGatewaysTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(TestPaths.RepoRoot, "tools", "Keys", "bin", configuration, "net10.0", "Keys.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.ArgumentList.Add("--address");
        start.ArgumentList.Add(System.Dialogue.Address.ToString());
        start.Environment["CHAT_ADMIN_KEY"] = credential;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout + await stderr);
    }

    private static HttpClient Client(ServiceProcess gateway, string? key)
    {
        var client = new HttpClient { BaseAddress = gateway.Address };
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
