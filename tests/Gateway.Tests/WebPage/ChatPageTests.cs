using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.WebPage;

/// <summary>
/// The web chat page in headless Chromium (WebPage/chat-page.mjs, playwright-core) against the running gateway:
/// what the page shows, and what reached DialogueService because of it. The run also takes the README's light and
/// dark screenshots (docs/screenshots).
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ChatPageTests(GatewayFixture fixture)
{
    [Fact]
    public async Task A_person_chats_stops_regenerates_edits_renames_deletes_and_sees_errors_in_the_browser()
    {
        var slowPrompt = "slow story " + Guid.NewGuid().ToString("N")[..8];
        var cancelled = fixture.Upstream.CancellationOf(slowPrompt);
        var screenshots = Path.Combine(RepositoryRoot.Path, "artifacts", "screenshots", "gateway");
        var readmeScreenshots = Path.Combine(RepositoryRoot.Path, "docs", "screenshots");

        var result = await NodeScript.RunAsync("tests/Gateway.Tests/WebPage/chat-page.mjs",
            [fixture.AnonymousBaseAddress.ToString(), "--scripted", "--slow-prompt", slowPrompt, "--oversize", (GatewayFixture.MaxBodyBytes + 1000).ToString(), "--screenshots", screenshots,
             "--keyed-url", fixture.BaseAddress.ToString(), "--api-key", GatewayFixture.BobKey, "--readme-screenshots", readmeScreenshots],
            TimeSpan.FromSeconds(150));
        Assert.True(result.ExitCode == 0, result.Describe());

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal(ScriptedDialogueService.ModelId, summary.GetProperty("model").GetString());
        Assert.InRange(summary.GetProperty("stoppedAt").GetInt32(), 1, ScriptedDialogueService.SlowWords * 6);

        // Stop in the page closed the stream; the upstream generation saw its cancellation.
        Assert.Same(cancelled.Task, await Task.WhenAny(cancelled.Task, Task.Delay(TimeSpan.FromSeconds(10))));

        // The settings panel's values reached DialogueService.
        var settings = fixture.Upstream.ChatRequests.Last(r => r.UserMessage.StartsWith("settings check", StringComparison.Ordinal)).Settings;
        Assert.Equal(0.3f, settings.Temperature);
        Assert.Equal(0.9f, settings.TopP);
        Assert.Equal(4, settings.MaxTokens);

        // Regenerate named the question answered again; the edit of a first message asked for a new first message;
        // the continuation followed the cut reply.
        var requests = fixture.Upstream.ChatRequests.Where(r => r.OwnerId == "anonymous-local").ToArray();
        var regenerate = requests.First(r => r.Regenerate);
        Assert.True(regenerate.HasParentMessageId);
        Assert.NotEqual("", regenerate.ParentMessageId);
        var edit = requests.Single(r => r.UserMessage == "first question, edited");
        Assert.True(edit.HasParentMessageId);
        Assert.Equal("", edit.ParentMessageId);
        Assert.NotEqual("", requests.Single(r => r.UserMessage == "second question").ParentMessageId);
        Assert.NotEqual("", requests.Single(r => r.ContinueReply).ParentMessageId);
        Assert.All(["chat-light.png", "chat-dark.png"], name => Assert.True(new FileInfo(Path.Combine(readmeScreenshots, name)).Length > 10_000, name));
        Assert.All(fixture.Upstream.ChatRequests.Where(r => r.UserMessage == "Hello from the browser"), r => Assert.Equal("anonymous-local", r.OwnerId));
        // The key entered in the page's settings acted as its owner.
        Assert.Equal("bob", fixture.Upstream.ChatRequests.Last(r => r.UserMessage == "Hello with a key").OwnerId);
    }
}
