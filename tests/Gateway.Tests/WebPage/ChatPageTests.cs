using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.WebPage;

/// <summary>
/// The web chat page in headless Chromium (WebPage/chat-page.mjs, playwright-core) against the running gateway:
/// what the page shows, and what reached DialogueService because of it.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ChatPageTests(GatewayFixture fixture)
{
    [Fact]
    public async Task A_person_chats_stops_regenerates_renames_deletes_and_sees_errors_in_the_browser()
    {
        var slowPrompt = "slow story " + Guid.NewGuid().ToString("N")[..8];
        var cancelled = fixture.Upstream.CancellationOf(slowPrompt);
        var screenshots = Path.Combine(RepositoryRoot.Path, "artifacts", "screenshots", "gateway");

        var result = await NodeScript.RunAsync("tests/Gateway.Tests/WebPage/chat-page.mjs",
            [fixture.AnonymousBaseAddress.ToString(), "--scripted", "--slow-prompt", slowPrompt, "--oversize", (GatewayFixture.MaxBodyBytes + 1000).ToString(), "--screenshots", screenshots,
             "--keyed-url", fixture.BaseAddress.ToString(), "--api-key", GatewayFixture.BobKey],
            TimeSpan.FromSeconds(90));
        Assert.True(result.ExitCode == 0, result.Describe());

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal(ScriptedDialogueService.ModelId, summary.GetProperty("model").GetString());
        Assert.InRange(summary.GetProperty("stoppedAt").GetInt32(), 1, ScriptedDialogueService.SlowWords * 6);

        // Stop in the page closed the stream; the upstream generation saw its cancellation.
        Assert.Same(cancelled.Task, await Task.WhenAny(cancelled.Task, Task.Delay(TimeSpan.FromSeconds(10))));

        // The settings panel's values reached DialogueService.
        var settings = fixture.Upstream.ChatRequests.Last(r => r.UserMessage.StartsWith("settings check", StringComparison.Ordinal)).Settings;
        Assert.Equal(0.3f, settings.Temperature);
        Assert.Equal(4, settings.MaxTokens);
        Assert.All(fixture.Upstream.ChatRequests.Where(r => r.UserMessage == "Hello from the browser"), r => Assert.Equal("anonymous-local", r.OwnerId));
        // The key entered in the page's settings acted as its owner.
        Assert.Equal("bob", fixture.Upstream.ChatRequests.Last(r => r.UserMessage == "Hello with a key").OwnerId);
    }
}
