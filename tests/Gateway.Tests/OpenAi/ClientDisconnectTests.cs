using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Tests.Shared;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>
/// A client that goes away mid-stream is normal: the Gateway cancels the upstream generation, logs the request at
/// information level with its id and without a stack trace, counts it in
/// <c>chatservices.http.server.abandoned_requests</c>, and logs nothing at warning or above.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ClientDisconnectTests(GatewayFixture fixture) : IAsyncLifetime
{
    private readonly CapturedLogs _logs = new();
    private WebApplication _gateway = null!;
    private Uri _address = null!;

    public async Task InitializeAsync() =>
        (_gateway, _address) = await GatewayFixture.StartGatewayAsync(fixture.UpstreamAddress, anonymous: false, logs: _logs);

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/completions")]
    [InlineData("/api/conversations/{id}/messages")]
    public async Task A_client_that_disconnects_mid_stream_is_counted_and_logged_quietly(string route)
    {
        using var abandoned = new CounterListener("chatservices.http.server.abandoned_requests");
        var text = "slow disconnect " + Guid.NewGuid().ToString("N");
        var cancelled = fixture.Upstream.CancellationOf(text);
        using var client = fixture.CreateClient(baseAddress: _address);
        var (path, json) = route switch
        {
            "/v1/chat/completions" => (route, $$"""{"model":"{{ScriptedDialogueService.ModelId}}","messages":[{"role":"user","content":"{{text}}"}],"stream":true}"""),
            "/v1/completions" => (route, $$"""{"model":"{{ScriptedDialogueService.ModelId}}","prompt":"{{text}}","max_tokens":400,"stream":true}"""),
            _ => ($"/api/conversations/{(await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()}/messages",
                $$"""{"content":"{{text}}"}"""),
        };

        using (var response = await client.PostStreamingAsync(path, json))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var read = 0;
            await foreach (var e in ServerSentEventReader.ReadAsync(response))
            {
                if (++read == 3) break;
            }
        } // disposing the response closes the stream mid-reply

        Assert.Same(cancelled.Task, await Task.WhenAny(cancelled.Task, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.True(SpinWait.SpinUntil(() => abandoned.Total("http.route", route) == 1, TimeSpan.FromSeconds(10)),
            "not counted; logged:\n" + _logs);
        var entry = Assert.Single(_logs.Entries, e => e.Message.Contains("ended early: the client went away"));
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Null(entry.Exception);
        Assert.Matches(@"^Request \S+ \(POST /", entry.Message); // the request id first
        Assert.DoesNotContain(_logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.DoesNotContain(_logs.Entries, e => e.Level > LogLevel.Debug && e.Exception is not null);
    }
}
