using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>
/// A Gateway that is stopping (SIGTERM) lets streamed replies go on for its drain time (Shutdown:DrainTimeout),
/// then ends those still running with an error event that says why, and cancels them upstream.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class DrainTests(GatewayFixture fixture)
{
    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/api/conversations/{id}/messages")]
    public async Task A_reply_still_streaming_at_the_end_of_the_drain_ends_with_an_error_event_saying_so(string route)
    {
        var (gateway, address) = await GatewayFixture.StartGatewayAsync(fixture.UpstreamAddress, anonymous: false,
            settings => settings["Shutdown:DrainTimeout"] = "00:00:00.5");
        await using var _ = gateway;
        var text = "slow drain " + Guid.NewGuid().ToString("N");
        var cancelled = fixture.Upstream.CancellationOf(text);
        using var client = fixture.CreateClient(baseAddress: address);
        var (path, json) = route == "/v1/chat/completions"
            ? (route, $$"""{"model":"{{ScriptedDialogueService.ModelId}}","messages":[{"role":"user","content":"{{text}}"}],"stream":true}""")
            : ($"/api/conversations/{(await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()}/messages",
                $$"""{"content":"{{text}}"}""");

        using var response = await client.PostStreamingAsync(path, json);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = new List<ServerSentEvent>();
        Task? stopping = null;
        await foreach (var e in ServerSentEventReader.ReadAsync(response))
        {
            events.Add(e);
            if (events.Count == 3) stopping = gateway.StopAsync(); // what SIGTERM does
        }
        Assert.NotNull(stopping);
        await stopping;

        // The slow reply (400 words, 40 ms apart) was still streaming half a second after the stop began.
        Assert.True(events.Count > 5, $"{events.Count} events");
        var error = events[^1].Json.GetProperty("error");
        Assert.Equal("The gateway shut down: the reply was stopped after the drain time of 0.5 s.", error.GetProperty("message").GetString());
        Assert.Same(cancelled.Task, await Task.WhenAny(cancelled.Task, Task.Delay(TimeSpan.FromSeconds(10))));
    }
}
