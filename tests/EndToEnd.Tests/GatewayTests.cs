using System.Text.Json;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Front ends against the whole system: the official OpenAI SDK and a person in a real browser, through the
/// Gateway, DialogueService and InferenceService.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class GatewayTests(ChatSystemFixture fixture)
{
    private ChatSystem System => fixture.System;

    [Fact]
    public async Task The_openai_SDK_chats_streams_and_completes_against_the_running_system()
    {
        var result = await NodeScript.RunAsync("tests/Gateway.Tests/Interop/openai-sdk.mjs", [System.Gateway.Address.ToString()], TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.Describe() + "\n" + System.Logs);

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("model", summary.GetProperty("model").GetString()); // the model folder's name
        Assert.False(string.IsNullOrEmpty(summary.GetProperty("reply").GetString()));
        Assert.True(summary.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);
    }

    [Fact]
    public async Task A_person_chats_stops_and_regenerates_in_the_browser_against_the_running_system()
    {
        var screenshots = Path.Combine(RepositoryRoot.Path, "artifacts", "screenshots", "end-to-end");
        var result = await NodeScript.RunAsync("tests/Gateway.Tests/WebPage/chat-page.mjs",
            [System.Gateway.Address.ToString(), "--slow-prompt", "Tell me a very long story about the sea.", "--screenshots", screenshots],
            TimeSpan.FromSeconds(180));
        Assert.True(result.ExitCode == 0, result.Describe() + "\n" + System.Logs);

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.False(string.IsNullOrEmpty(summary.GetProperty("reply").GetString()));
        Assert.True(summary.GetProperty("stoppedAt").GetInt32() > 0);

        // Stop in the page reached InferenceService: nothing is left running there.
        var info = await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest());
        for (var i = 0; i < 50 && info.Running > 0; i++)
        {
            await Task.Delay(100);
            info = await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest());
        }
        Assert.Equal(0u, info.Running);
    }
}
