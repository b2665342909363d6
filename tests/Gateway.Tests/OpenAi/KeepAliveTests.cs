using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>
/// While a streamed reply waits for its first token (queued, or its prompt prefilled), the Gateway sends an SSE
/// comment every Gateway:SseKeepAliveInterval so that proxies do not cut the idle stream; clients ignore comments.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class KeepAliveTests(GatewayFixture fixture) : IAsyncLifetime
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);
    private WebApplication _gateway = null!;
    private Uri _address = null!;

    public async Task InitializeAsync() =>
        (_gateway, _address) = await GatewayFixture.StartGatewayAsync(fixture.UpstreamAddress, anonymous: false,
            settings => settings["Gateway:SseKeepAliveInterval"] = Interval.ToString());

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/completions")]
    [InlineData("/api/conversations/{id}/messages")]
    public async Task A_stream_waiting_for_its_first_token_gets_comment_lines_at_the_interval(string route)
    {
        var (lines, firstDelta) = await StreamLinesAsync(fixture.CreateClient(baseAddress: _address), route);
        var comments = lines.Take(firstDelta).Count(l => l == ": keep-alive");
        // The upstream waits 1.5 s before its first token: at 200 ms that is about 7 comments (fewer only if the
        // machine stalls); none after the tokens began.
        Assert.InRange(comments, 3, 100);
        Assert.DoesNotContain(": keep-alive", lines.Skip(firstDelta));
        Assert.All(lines.Where(l => l.StartsWith(':')), l => Assert.Equal(": keep-alive", l));
    }

    [Fact]
    public async Task A_wait_shorter_than_the_interval_sends_no_comment()
    {
        // The shared gateway keeps the default interval (15 s), longer than the 1.5 s wait.
        var (lines, _) = await StreamLinesAsync(fixture.CreateClient(), "/v1/chat/completions");
        Assert.DoesNotContain(lines, l => l.StartsWith(':'));
    }

    /// <summary>Every line of a "queued" reply's stream, and the index of the first line that carries its text.</summary>
    private static async Task<(List<string> Lines, int FirstDelta)> StreamLinesAsync(HttpClient client, string route)
    {
        using var _ = client;
        var text = "queued " + Guid.NewGuid().ToString("N");
        var (path, json) = route switch
        {
            "/v1/chat/completions" => (route, $$"""{"model":"{{ScriptedDialogueService.ModelId}}","messages":[{"role":"user","content":"{{text}}"}],"stream":true}"""),
            "/v1/completions" => (route, $$"""{"model":"{{ScriptedDialogueService.ModelId}}","prompt":"{{text}}","stream":true}"""),
            _ => ($"/api/conversations/{(await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()}/messages",
                $$"""{"content":"{{text}}"}"""),
        };
        using var response = await client.PostStreamingAsync(path, json);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var lines = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line) lines.Add(line);
        var firstDelta = lines.FindIndex(l => l.Contains("Hello!", StringComparison.Ordinal));
        Assert.True(firstDelta > 0, string.Join("\n", lines));
        return (lines, firstDelta);
    }
}
